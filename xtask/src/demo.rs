//! `cargo xtask demo`: builds the WebGPU demo (`burn-mtl-demo`) for the browser, assembles a
//! static folder and serves it on 127.0.0.1; with `--test`, drives headless Chromium through
//! ChromeDriver (WebDriver over plain HTTP) to run the page and checks what it reports.
//!
//! Build: `cargo build --release --target wasm32-unknown-unknown -p burn-mtl-demo` (same
//! profile and target dir as everything else), then `wasm-bindgen --target web` (the CLI must
//! be the version of the `wasm-bindgen` crate in `Cargo.lock`), then the page of
//! `burn-mtl-demo/www`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Options of `cargo xtask demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Port to serve on (127.0.0.1).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Build the folder and exit without serving.
    #[arg(long)]
    pub build_only: bool,
    /// Where to assemble the page (default: `<target dir>/demo`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Instead of serving: open the page in headless Chromium (through ChromeDriver), let it
    /// train, check that it reports finite losses and drew its plots, save screenshots.
    #[arg(long)]
    pub test: bool,
    /// With --test: steps per page run.
    #[arg(long, default_value_t = 300)]
    pub steps: usize,
    /// With --test: methods of each page run (burn-mtl specifications).
    #[arg(long, default_value = "mgda,famo,nash_mtl")]
    pub methods: String,
    /// With --test: where the screenshots and the JSON summary go.
    #[arg(long, default_value = "target/ci-demo")]
    pub test_out: PathBuf,
    /// With --test: the Chromium binary.
    #[arg(long, default_value = "/usr/bin/chromium")]
    pub chromium: PathBuf,
    /// With --test: the ChromeDriver binary.
    #[arg(long, default_value = "chromedriver")]
    pub chromedriver: PathBuf,
    /// With --test: seconds one page run may take.
    #[arg(long, default_value_t = 240)]
    pub timeout: u64,
    /// With --test: fail unless the page run with WebGPU enabled really ran on WebGPU.
    #[arg(long)]
    pub require_webgpu: bool,
}

/// Entry point of `cargo xtask demo`.
pub fn main(args: &Args) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn run(args: &Args) -> Res<()> {
    let root = workspace_root()?;
    let target_dir = target_dir(&root)?;
    let out = args.out.clone().unwrap_or_else(|| target_dir.join("demo"));
    build(&root, &target_dir, &out)?;
    println!("demo assembled in {}", out.display());
    if args.test {
        return browser_test(args, &root, &out);
    }
    if args.build_only {
        return Ok(());
    }
    let server = tiny_http::Server::http(("127.0.0.1", args.port))
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    println!(
        "serving on http://127.0.0.1:{}/ (Ctrl-C to stop)",
        args.port
    );
    serve(&server, &out, None);
    Ok(())
}

fn workspace_root() -> Res<PathBuf> {
    // xtask/ is one level below the workspace root.
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    Ok(here
        .parent()
        .ok_or("xtask has no parent folder")?
        .to_path_buf())
}

/// The workspace's target dir (honours `CARGO_TARGET_DIR` and cargo config).
fn target_dir(root: &Path) -> Res<PathBuf> {
    let out = Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err("cargo metadata failed".into());
    }
    let meta: Value = serde_json::from_slice(&out.stdout)?;
    Ok(PathBuf::from(
        meta["target_directory"]
            .as_str()
            .ok_or("cargo metadata: no target_directory")?,
    ))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The version of the `wasm-bindgen` crate in `Cargo.lock`.
fn locked_wasm_bindgen(root: &Path) -> Res<String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\""
            && let Some(v) = lines.next()
            && let Some(v) = v.trim().strip_prefix("version = \"")
        {
            return Ok(v.trim_end_matches('"').to_string());
        }
    }
    Err("Cargo.lock has no wasm-bindgen package".into())
}

fn build(root: &Path, target_dir: &Path, out: &Path) -> Res<()> {
    let status = Command::new(cargo())
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "burn-mtl-demo",
        ])
        .current_dir(root)
        .status()?;
    if !status.success() {
        return Err(
            "building burn-mtl-demo for wasm32-unknown-unknown failed (is the target \
                    installed? `rustup target add wasm32-unknown-unknown`)"
                .into(),
        );
    }
    let wasm = target_dir.join("wasm32-unknown-unknown/release/burn_mtl_demo.wasm");
    let want = locked_wasm_bindgen(root)?;
    let have = Command::new("wasm-bindgen").arg("--version").output();
    let have = match have {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => String::new(),
    };
    if have.split_whitespace().nth(1) != Some(want.as_str()) {
        return Err(format!(
            "wasm-bindgen CLI {want} is needed (found: {}); install it with \
             `cargo install wasm-bindgen-cli --version {want}`",
            if have.is_empty() { "none" } else { &have }
        )
        .into());
    }
    if out.exists() {
        std::fs::remove_dir_all(out)?;
    }
    std::fs::create_dir_all(out.join("pkg"))?;
    let status = Command::new("wasm-bindgen")
        .args(["--target", "web", "--no-typescript", "--out-dir"])
        .arg(out.join("pkg"))
        .arg(&wasm)
        .status()?;
    if !status.success() {
        return Err("wasm-bindgen failed".into());
    }
    for entry in std::fs::read_dir(root.join("burn-mtl-demo/www"))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), out.join(entry.file_name()))?;
        }
    }
    Ok(())
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// Serves the files of `dir` (GET only, no listing, nothing outside `dir`) until `stop` is set.
fn serve(server: &tiny_http::Server, dir: &Path, stop: Option<&std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::Ordering;
    loop {
        if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            return;
        }
        let request = match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(_) => return,
        };
        let url = request.url().split(['?', '#']).next().unwrap_or("/");
        let rel = url.trim_start_matches('/');
        let rel = if rel.is_empty() { "index.html" } else { rel };
        let safe = !rel.split('/').any(|c| c == ".." || c.is_empty());
        let path = dir.join(rel);
        let response = if safe && path.is_file() {
            match std::fs::read(&path) {
                Ok(bytes) => {
                    let header = tiny_http::Header::from_bytes(
                        &b"Content-Type"[..],
                        content_type(&path).as_bytes(),
                    )
                    .expect("valid header");
                    tiny_http::Response::from_data(bytes).with_header(header)
                }
                Err(_) => {
                    tiny_http::Response::from_data(b"read error".to_vec()).with_status_code(500)
                }
            }
        } else {
            tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404)
        };
        let _ = request.respond(response);
    }
}

// ------------------------------------------------------------------ browser test

/// One page run of the test.
struct PageRun {
    name: &'static str,
    query: String,
    /// Start Chromium with WebGPU enabled (else with `--disable-gpu`).
    webgpu_flags: bool,
    /// The backend the page must report, if any.
    expect: Option<&'static str>,
}

fn browser_test(args: &Args, root: &Path, out: &Path) -> Res<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let test_out = if args.test_out.is_absolute() {
        args.test_out.clone()
    } else {
        root.join(&args.test_out)
    };
    std::fs::create_dir_all(&test_out)?;
    let server = Arc::new(
        tiny_http::Server::http("127.0.0.1:0").map_err(|e| format!("cannot listen: {e}"))?,
    );
    let port = server
        .server_addr()
        .to_ip()
        .ok_or("server has no IP address")?
        .port();
    let stop = Arc::new(AtomicBool::new(false));
    let serving = {
        let (server, stop, dir) = (server.clone(), stop.clone(), out.to_path_buf());
        std::thread::spawn(move || serve(&server, &dir, Some(&stop)))
    };
    let query = format!("autorun={}&method={}&start=all", args.steps, args.methods);
    let runs = [
        // WebGPU as Chromium brings it up without a GPU (its bundled SwiftShader Vulkan).
        PageRun {
            name: "webgpu",
            query: query.clone(),
            webgpu_flags: true,
            expect: if args.require_webgpu {
                Some("webgpu")
            } else {
                None
            },
        },
        // No WebGPU: the page must notice and fall back to burn-ndarray by itself.
        PageRun {
            name: "fallback",
            query: query.clone(),
            webgpu_flags: false,
            expect: Some("ndarray"),
        },
        // burn-ndarray through the engine WebGPU uses (device reads, asynchronous).
        PageRun {
            name: "ndarray-device",
            query: format!("{query}&backend=ndarray&engine=device"),
            webgpu_flags: false,
            expect: Some("ndarray"),
        },
    ];
    let mut summary = Vec::new();
    let mut failures = Vec::new();
    let mut reference_losses: Option<Value> = None;
    for page in &runs {
        let url = format!("http://127.0.0.1:{port}/?{}", page.query);
        println!("== page run `{}`: {url}", page.name);
        let shot = test_out.join(format!("screenshot-{}.png", page.name));
        match page_run(args, page, &url, &shot) {
            Ok(report) => {
                println!("{}", serde_json::to_string_pretty(&report)?);
                let mut problems = check(&report, args.steps);
                if let Some(want) = page.expect
                    && report["backend"] != want
                {
                    problems.push(format!(
                        "backend {} instead of {want} ({})",
                        report["backend"], report["backend_note"]
                    ));
                }
                if let Some(reference) = &reference_losses {
                    let d = max_loss_difference(reference, &report);
                    println!("largest |ΔL| against the first run: {d:.3e}");
                    if d > 1e-3 {
                        problems.push(format!("losses differ from the first run's by {d:.3e}"));
                    }
                } else {
                    reference_losses = Some(report.clone());
                }
                for p in &problems {
                    failures.push(format!("{}: {p}", page.name));
                }
                summary.push(json!({ "run": page.name, "url": url, "report": report,
                    "problems": problems, "screenshot": shot }));
            }
            Err(e) => {
                println!("page run `{}` failed: {e}", page.name);
                failures.push(format!("{}: {e}", page.name));
                summary.push(json!({ "run": page.name, "url": url, "error": e.to_string() }));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = serving.join();
    // The first run's screenshot is also the demo's screenshot.
    let first = test_out.join("screenshot-webgpu.png");
    if first.is_file() {
        std::fs::copy(&first, test_out.join("screenshot.png"))?;
    }
    std::fs::write(
        test_out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    println!("screenshots and summary.json in {}", test_out.display());
    let failed = runs
        .iter()
        .filter(|r| {
            failures
                .iter()
                .any(|f| f.starts_with(&format!("{}:", r.name)))
        })
        .count();
    println!("demo: {} passed, {failed} failed", runs.len() - failed);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; ").into())
    }
}

/// The largest difference between the final losses two page runs report (same runs);
/// infinite if they do not line up.
fn max_loss_difference(a: &Value, b: &Value) -> f64 {
    let parse = |r: &Value| -> Vec<f64> {
        r["status"]["losses"]
            .as_str()
            .and_then(|s| serde_json::from_str::<Vec<Option<[f64; 2]>>>(s).ok())
            .unwrap_or_default()
            .into_iter()
            .flat_map(|l| l.unwrap_or([f64::NAN; 2]))
            .collect()
    };
    let (a, b) = (parse(a), parse(b));
    if a.is_empty() || a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(
            0.0,
            |m, d| if d.is_nan() { f64::INFINITY } else { m.max(d) },
        )
}

/// What a finished page run must show.
fn check(report: &Value, steps: usize) -> Vec<String> {
    let mut problems = Vec::new();
    let status = &report["status"];
    if status["status"] != "done" {
        problems.push(format!(
            "status is {} (message: {})",
            status["status"], report["status_text"]
        ));
    }
    let done: usize = status["steps"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if done < steps {
        problems.push(format!("{done} steps, expected {steps}"));
    }
    if status["finite"] != "true" {
        problems.push("the page reports non-finite losses".into());
    }
    if status["errors"].as_str().unwrap_or("0") != "0" {
        problems.push(format!("{} run(s) failed", status["errors"]));
    }
    for canvas in ["loss-space", "param-space", "weights"] {
        let inked = report["inked_pixels"][canvas].as_u64().unwrap_or(0);
        if inked < 500 {
            problems.push(format!(
                "canvas {canvas} looks empty ({inked} coloured pixels)"
            ));
        }
    }
    let losses: Value = status["losses"]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    let n = losses.as_array().map_or(0, Vec::len);
    if n == 0 {
        problems.push("no losses reported".into());
    }
    problems
}

/// A small WebDriver client (JSON over HTTP/1.1 on loopback).
struct Driver {
    port: u16,
    child: Child,
    session: Option<String>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(id) = self.session.take() {
            let _ = self.call("DELETE", &format!("/session/{id}"), None);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start(binary: &Path) -> Res<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let driver = Self {
            port,
            child,
            session: None,
        };
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(20) {
            if let Ok(v) = driver.call("GET", "/status", None)
                && v["value"]["ready"] == true
            {
                return Ok(driver);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err("chromedriver did not become ready".into())
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Res<Value> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        let body = body.map(Value::to_string).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json; \
             charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        let payload = read_response(&mut stream)?;
        let v: Value = serde_json::from_slice(&payload)?;
        if let Some(err) = v["value"].get("error") {
            return Err(format!(
                "webdriver {method} {path}: {err}: {}",
                v["value"]["message"]
            )
            .into());
        }
        Ok(v)
    }

    fn new_session(&mut self, chromium: &Path, webgpu_flags: bool, profile: &Path) -> Res<()> {
        let mut flags = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1400,1800".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        if webgpu_flags {
            flags.extend(
                [
                    "--enable-unsafe-webgpu",
                    "--enable-features=Vulkan",
                    "--use-vulkan=swiftshader",
                    "--use-webgpu-adapter=swiftshader",
                    "--enable-unsafe-swiftshader",
                    "--ignore-gpu-blocklist",
                ]
                .map(String::from),
            );
        } else {
            flags.push("--disable-gpu".into());
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "goog:chromeOptions": { "binary": chromium, "args": flags }
        }}});
        let v = self.call("POST", "/session", Some(&caps))?;
        let id = v["value"]["sessionId"]
            .as_str()
            .ok_or("webdriver: no session id")?;
        self.session = Some(id.to_string());
        Ok(())
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session.as_deref().unwrap_or(""))
    }

    fn execute(&self, script: &str) -> Res<Value> {
        let v = self.call(
            "POST",
            &self.session_path("/execute/sync"),
            Some(&json!({ "script": script, "args": [] })),
        )?;
        Ok(v["value"].clone())
    }
}

/// Reads one HTTP/1.1 response and returns its body: by `Content-Length`, chunked, or up to
/// the end of the stream (chromedriver may keep the connection open after answering).
fn read_response(stream: &mut TcpStream) -> Res<Vec<u8>> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let split = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err("connection closed before the HTTP headers ended".into());
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let mut body = raw[split + 4..].to_vec();
    let length = head.lines().find_map(|l| {
        l.strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<usize>().ok())
    });
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let complete = match length {
            Some(len) => body.len() >= len,
            None if chunked => body.ends_with(b"0\r\n\r\n"),
            None => false,
        };
        if complete {
            break;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    if let Some(len) = length {
        body.truncate(len);
    } else if chunked {
        body = dechunk(&body)?;
    }
    Ok(body)
}

/// Decodes an HTTP chunked body.
fn dechunk(mut body: &[u8]) -> Res<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk")?;
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&body[..line_end])
                .split(';')
                .next()
                .unwrap_or("")
                .trim(),
            16,
        )?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(body.get(..size).ok_or("short chunk")?);
        body = body.get(size + 2..).ok_or("short chunk")?;
    }
}

/// Standard base64 (the screenshot) to bytes.
fn base64_decode(s: &str) -> Res<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\n' | b'\r' => continue,
            _ => return Err("invalid base64".into()),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

const STATUS_SCRIPT: &str = "const s = document.getElementById('status'); \
    return { status: Object.assign({}, s.dataset), text: s.textContent, \
    note: (document.getElementById('backend-note') || {}).textContent || '' };";

const INK_SCRIPT: &str = "const out = {}; \
    for (const id of ['loss-space', 'param-space', 'weights']) { \
      const c = document.getElementById(id); \
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; \
      let n = 0; \
      for (let i = 0; i < d.length; i += 4) { \
        if (d[i + 3] > 0 && !(d[i] > 240 && d[i + 1] > 240 && d[i + 2] > 240)) n++; \
      } \
      out[id] = n; \
    } \
    return out;";

fn page_run(args: &Args, page: &PageRun, url: &str, shot: &Path) -> Res<Value> {
    let profile = std::env::temp_dir().join(format!(
        "burn-mtl-demo-chromium-{}-{}",
        std::process::id(),
        page.name
    ));
    let _ = std::fs::remove_dir_all(&profile);
    let mut driver = Driver::start(&args.chromedriver)?;
    driver.new_session(&args.chromium, page.webgpu_flags, &profile)?;
    driver.call(
        "POST",
        &driver.session_path("/url"),
        Some(&json!({ "url": url })),
    )?;
    let began = Instant::now();
    let mut last = Value::Null;
    while began.elapsed() < Duration::from_secs(args.timeout) {
        last = driver.execute(STATUS_SCRIPT)?;
        let s = last["status"]["status"].as_str().unwrap_or("");
        if s == "done" || s == "error" {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let seconds = began.elapsed().as_secs_f64();
    let inked = driver.execute(INK_SCRIPT)?;
    let png = driver.call("GET", &driver.session_path("/screenshot"), None)?;
    let png = base64_decode(png["value"].as_str().ok_or("no screenshot")?)?;
    std::fs::write(shot, png)?;
    drop(driver);
    let _ = std::fs::remove_dir_all(&profile);
    Ok(json!({
        "backend": last["status"]["backend"],
        "backend_note": last["note"],
        "status": last["status"],
        "status_text": last["text"],
        "inked_pixels": inked,
        "seconds": (seconds * 10.0).round() / 10.0,
        "screenshot": shot,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        assert_eq!(base64_decode("aGVsbG8gd29ybGQ=").unwrap(), b"hello world");
        assert_eq!(base64_decode("AAEC/w==").unwrap(), vec![0, 1, 2, 255]);
    }

    #[test]
    fn chunked_bodies_decode() {
        let body = b"4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n";
        assert_eq!(dechunk(body).unwrap(), b"Wikipedia");
    }

    #[test]
    fn checks_name_what_is_missing() {
        let report = json!({
            "status": { "status": "done", "steps": "300", "finite": "true", "errors": "0",
                        "losses": "[[1.0, 2.0]]" },
            "inked_pixels": { "loss-space": 9000, "param-space": 9000, "weights": 9000 },
        });
        assert!(check(&report, 300).is_empty());
        let mut bad = report.clone();
        bad["status"]["finite"] = json!("false");
        bad["inked_pixels"]["weights"] = json!(3);
        assert_eq!(check(&bad, 300).len(), 2);
        assert_eq!(check(&report, 400).len(), 1);
    }
}
