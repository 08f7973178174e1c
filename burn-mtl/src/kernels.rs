//! The CPU kernels, the bottom layer: plain Rust on `f32` slices, no Burn type (the jacobian
//! layer hands them the buffers and takes the results back to tensors).
//!
//! Blocks whose K task gradients sit in host memory: on the CPU backends (ndarray, flex) a
//! gradient read with `Tensor::into_data` hands over its own buffer (no copy when the
//! gradient is not shared), and the Gram matrix and the weighted sum are computed here, on
//! those buffers, in one pass each.
//!
//! Why not Burn's ops: on a CPU backend `J Jᵀ` for a `[K, n]` block goes through a general
//! matmul that packs both operands and pads the K×K output to its register tiles, and the
//! rows first have to be copied into `[K, c]` chunks. Measured at K = 10, P = 1e7 (single
//! thread, `docs/bench/findings.md`), that is 8–20× the time of reading the gradients once;
//! the kernels below are a tiled symmetric rank-K product (`syrk`) and a streaming
//! `Σ_k w_k g_k` written into one of the gradient buffers, both close to that read time.
//!
//! Accumulation: within a tile of at most [`tile_cols`] columns the products are summed in
//! f32 lanes (≤ 512 terms per lane), the tiles' sums in f64, so the Gram matrix is more exact
//! than a single f32 matmul over `n` columns. On x86-64 the loops are compiled three times
//! (AVX-512, AVX2 + FMA, baseline) and the widest the CPU has is chosen at run time.

/// One shared parameter's K task gradients as host buffers (`None`: the task has no gradient
/// there, a zero row). Every present row has `n` values.
#[derive(Clone, Debug)]
pub(crate) struct HostRows {
    pub(crate) rows: Vec<Option<Vec<f32>>>,
    pub(crate) n: usize,
}

impl HostRows {
    /// The rows' contribution `J Jᵀ` added to `out` (K×K, row-major, both triangles).
    pub(crate) fn gram_into(&self, out: &mut [f64]) {
        let k = self.rows.len();
        debug_assert_eq!(out.len(), k * k);
        let present: Vec<(usize, &[f32])> = self
            .rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_deref().map(|r| (i, r)))
            .collect();
        let slices: Vec<&[f32]> = present.iter().map(|(_, r)| *r).collect();
        let m = slices.len();
        let mut g = vec![0.0f64; m * m];
        gram_lower(&slices, self.n, &mut g);
        for (a, (i, _)) in present.iter().enumerate() {
            for (b, (j, _)) in present.iter().enumerate().take(a + 1) {
                let v = g[a * m + b];
                out[i * k + j] += v;
                if i != j {
                    out[j * k + i] += v;
                }
            }
        }
    }

    /// `Σ_k w_k g_k` (f32 weights, as on the tensor path), written into the buffer of the
    /// first present row, which is returned. Zero when no row is present.
    pub(crate) fn combine(self, w: &[f32]) -> Vec<f32> {
        let n = self.n;
        let mut present: Vec<(f32, Vec<f32>)> = self
            .rows
            .into_iter()
            .zip(w)
            .filter_map(|(r, &wk)| r.map(|r| (wk, r)))
            .collect();
        if present.is_empty() {
            return vec![0.0; n];
        }
        let (w0, mut out) = present.remove(0);
        let others: Vec<(f32, &[f32])> = present.iter().map(|(wk, r)| (*wk, &r[..])).collect();
        weighted_sum_into(&mut out, w0, &others);
        out
    }

    /// A column-wise rule: `f(c, column c)` for every column, the column's K values in f64
    /// (absent rows as zeros); the result as f32.
    pub(crate) fn columnwise(&self, mut f: impl FnMut(usize, &mut [f64]) -> f64) -> Vec<f32> {
        let mut col = vec![0.0f64; self.rows.len()];
        (0..self.n)
            .map(|c| {
                for (v, r) in col.iter_mut().zip(&self.rows) {
                    *v = r.as_ref().map_or(0.0, |r| f64::from(r[c]));
                }
                f(c, &mut col) as f32
            })
            .collect()
    }

    /// The moving-average buffer's Gram data against these rows: `(B Bᵀ, B Jᵀ)`, both K×K
    /// row-major (the first symmetric), for the buffer `B` (K×n, row-major).
    pub(crate) fn history_grams(&self, buffer: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let (k, n) = (self.rows.len(), self.n);
        let b: Vec<&[f32]> = buffer.chunks_exact(n.max(1)).take(k).collect();
        let mut prev = vec![0.0f64; k * k];
        if n > 0 {
            gram_lower(&b, n, &mut prev);
        }
        for i in 0..k {
            for j in 0..i {
                prev[j * k + i] = prev[i * k + j];
            }
        }
        let present: Vec<(usize, &[f32])> = self
            .rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_deref().map(|r| (i, r)))
            .collect();
        let rows: Vec<&[f32]> = present.iter().map(|(_, r)| *r).collect();
        let mut part = vec![0.0f64; k * rows.len()];
        if n > 0 {
            cross(&b, &rows, n, &mut part);
        }
        let mut cross_kk = vec![0.0f64; k * k];
        for a in 0..k {
            for (q, (l, _)) in present.iter().enumerate() {
                cross_kk[a * k + l] = part[a * rows.len() + q];
            }
        }
        (prev, cross_kk)
    }

    /// DB-MTL's moving average on the host: `B ← decay·B + s_k·g_k` per task (`buffer` `None`:
    /// zero, at the first step), then `d = Σ_k w_k B_k`. Returns `(d, B)`, `B` K×n row-major.
    pub(crate) fn moving_average(
        self,
        buffer: Option<Vec<f32>>,
        decay: f32,
        scale: &[f32],
        w: &[f32],
    ) -> (Vec<f32>, Vec<f32>) {
        let (k, n) = (self.rows.len(), self.n);
        let mut new = buffer.unwrap_or_else(|| vec![0.0; k * n]);
        let mut spare = None;
        for (t, (slot, row)) in new.chunks_exact_mut(n.max(1)).zip(self.rows).enumerate() {
            match row {
                Some(r) => {
                    weighted_sum_into(slot, decay, &[(scale[t], &r)]);
                    spare.get_or_insert(r);
                }
                None => weighted_sum_into(slot, decay, &[]),
            }
        }
        // `d` goes into a gradient buffer that is no longer needed.
        let mut d = spare.unwrap_or_else(|| vec![0.0; n]);
        if k > 0 && n > 0 {
            d.copy_from_slice(&new[..n]);
            let others: Vec<(f32, &[f32])> =
                (1..k).map(|t| (w[t], &new[t * n..(t + 1) * n])).collect();
            weighted_sum_into(&mut d, w[0], &others);
        }
        (d, new)
    }

    /// `⟨g_k, d⟩` per task (0 for absent rows), `d` of length `n`.
    pub(crate) fn dots_with(&self, d: &[f32]) -> Vec<f64> {
        self.rows
            .iter()
            .map(|r| r.as_deref().map_or(0.0, |r| dot(r, d)))
            .collect()
    }
}

/// The columns of one tile for K rows: the K tile slices (4·K·cols bytes, 32 KiB) stay in the
/// L1 data cache while their K(K+1)/2 products are formed (larger tiles, kept in L2, were
/// limited by L2 bandwidth: 60 ms instead of 49 ms for K = 10, n = 1e7 on the bench
/// machine); between 256 and 8192, a multiple of 64.
pub(crate) fn tile_cols(k: usize) -> usize {
    ((8192 / k.max(1)) / 64 * 64).clamp(256, 8192)
}

/// A vector of f32 lanes: the operations the kernels need. Implemented with AVX-512 and AVX2
/// intrinsics on x86-64 and as a plain array elsewhere; the kernels are written once, generic
/// over it, and compiled inside functions that enable the matching CPU features.
///
/// # Safety
/// Every method may only run on a CPU with the instructions of the implementation; `load`
/// and `store` need `Self::N` valid f32 values at the pointer.
trait Lanes: Copy {
    const N: usize;
    unsafe fn zero() -> Self;
    unsafe fn splat(v: f32) -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn store(self, p: *mut f32);
    /// `self + a·b` (fused where the CPU has it).
    unsafe fn madd(self, a: Self, b: Self) -> Self;
    unsafe fn mul(self, b: Self) -> Self;
    /// The lanes' sum in f64, in lane order.
    #[inline(always)]
    unsafe fn sum_f64(self) -> f64 {
        let mut buf = [0.0f32; 16];
        debug_assert!(Self::N <= 16);
        // SAFETY: `buf` has room for N ≤ 16 values; the caller guarantees the CPU.
        unsafe { self.store(buf.as_mut_ptr()) };
        buf[..Self::N].iter().map(|&v| f64::from(v)).sum()
    }
}

/// Portable lanes: the compiler vectorizes what the target allows.
#[derive(Clone, Copy)]
struct Portable([f32; 8]);

impl Lanes for Portable {
    const N: usize = 8;
    #[inline(always)]
    unsafe fn zero() -> Self {
        Portable([0.0; 8])
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        Portable([v; 8])
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        let mut v = [0.0; 8];
        // SAFETY: the caller guarantees 8 readable values at `p`.
        unsafe { std::ptr::copy_nonoverlapping(p, v.as_mut_ptr(), 8) };
        Portable(v)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees room for 8 values at `p`.
        unsafe { std::ptr::copy_nonoverlapping(self.0.as_ptr(), p, 8) };
    }
    #[inline(always)]
    unsafe fn madd(self, a: Self, b: Self) -> Self {
        let mut r = self.0;
        for ((v, x), y) in r.iter_mut().zip(a.0).zip(b.0) {
            *v += x * y;
        }
        Portable(r)
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        let mut r = self.0;
        for (v, y) in r.iter_mut().zip(b.0) {
            *v *= y;
        }
        Portable(r)
    }
}

/// `⟨a, b⟩` in f64, with two accumulators so that two multiply-adds are in flight.
///
/// # Safety
/// The CPU must support `V`'s instructions.
#[inline(always)]
unsafe fn dot1<V: Lanes>(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len();
    assert_eq!(b.len(), n, "tile slices of equal length");
    let body = n - n % V::N;
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    // SAFETY: as in `dots4`.
    unsafe {
        let (mut e, mut o) = (V::zero(), V::zero());
        let mut i = 0;
        while i + 2 * V::N <= body {
            e = e.madd(V::load(pa.add(i)), V::load(pb.add(i)));
            o = o.madd(V::load(pa.add(i + V::N)), V::load(pb.add(i + V::N)));
            i += 2 * V::N;
        }
        if i < body {
            e = e.madd(V::load(pa.add(i)), V::load(pb.add(i)));
        }
        let mut s = e.sum_f64() + o.sum_f64();
        for c in body..n {
            s += f64::from(a[c]) * f64::from(b[c]);
        }
        s
    }
}

/// `s[q][r] += a_q ⊙ b_r` over the slices (lengths a multiple of `V::N`): two rows against
/// four, eight accumulators fed by six loads, which keeps the L1 loads below the
/// multiply-adds.
///
/// # Safety
/// The CPU must support `V`'s instructions.
#[inline(always)]
unsafe fn block2x4<V: Lanes>(a: [&[f32]; 2], b: [&[f32]; 4], s: &mut [[V; 4]; 2]) {
    let n = a[0].len();
    for row in a.iter().chain(&b) {
        assert_eq!(row.len(), n, "tile slices of equal length");
    }
    debug_assert_eq!(n % V::N, 0);
    let pa = a.map(<[f32]>::as_ptr);
    let pb = b.map(<[f32]>::as_ptr);
    let mut acc = *s;
    // SAFETY: every offset i < n (a multiple of N) leaves N values in all six slices; the
    // caller guarantees the CPU.
    unsafe {
        let mut i = 0;
        while i < n {
            let x0 = V::load(pa[0].add(i));
            let x1 = V::load(pa[1].add(i));
            for r in 0..4 {
                let y = V::load(pb[r].add(i));
                acc[0][r] = acc[0][r].madd(x0, y);
                acc[1][r] = acc[1][r].madd(x1, y);
            }
            i += V::N;
        }
    }
    *s = acc;
}

/// `s[r] += a ⊙ b_r` over the slices (lengths a multiple of `V::N`): one row against four.
///
/// # Safety
/// The CPU must support `V`'s instructions.
#[inline(always)]
unsafe fn block1x4<V: Lanes>(a: &[f32], b: [&[f32]; 4], s: &mut [V; 4]) {
    let n = a.len();
    for row in &b {
        assert_eq!(row.len(), n, "tile slices of equal length");
    }
    debug_assert_eq!(n % V::N, 0);
    let pa = a.as_ptr();
    let pb = b.map(<[f32]>::as_ptr);
    let mut acc = *s;
    // SAFETY: as in `block2x4`.
    unsafe {
        let mut i = 0;
        while i < n {
            let x = V::load(pa.add(i));
            for r in 0..4 {
                acc[r] = acc[r].madd(x, V::load(pb[r].add(i)));
            }
            i += V::N;
        }
    }
    *s = acc;
}

/// `s += a ⊙ b` over the slices (lengths a multiple of `V::N`).
///
/// # Safety
/// The CPU must support `V`'s instructions.
#[inline(always)]
unsafe fn block1x1<V: Lanes>(a: &[f32], b: &[f32], s: &mut V) {
    let n = a.len();
    assert_eq!(b.len(), n, "tile slices of equal length");
    debug_assert_eq!(n % V::N, 0);
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = *s;
    // SAFETY: as in `block2x4`.
    unsafe {
        let mut i = 0;
        while i < n {
            acc = acc.madd(V::load(pa.add(i)), V::load(pb.add(i)));
            i += V::N;
        }
    }
    *s = acc;
}

/// Row `i`'s products with rows `from..=i` of the tile, added to the accumulators of row `i`
/// (`acc` is m×m).
///
/// # Safety
/// The CPU must support `V`'s instructions.
#[inline(always)]
unsafe fn row_products<V: Lanes>(tile: &[&[f32]], i: usize, from: usize, acc: &mut [V]) {
    let m = tile.len();
    let a = tile[i];
    let mut j = from;
    while j + 4 <= i + 1 {
        let mut s = [
            acc[i * m + j],
            acc[i * m + j + 1],
            acc[i * m + j + 2],
            acc[i * m + j + 3],
        ];
        // SAFETY: the caller guarantees the CPU.
        unsafe { block1x4::<V>(a, [tile[j], tile[j + 1], tile[j + 2], tile[j + 3]], &mut s) };
        acc[i * m + j..i * m + j + 4].copy_from_slice(&s);
        j += 4;
    }
    while j <= i {
        // SAFETY: the caller guarantees the CPU.
        unsafe { block1x1::<V>(a, tile[j], &mut acc[i * m + j]) };
        j += 1;
    }
}

/// How many columns the f32 lane accumulators of one pair sum before they are added to the
/// f64 result: at most 8192 (≤ 512 terms per lane with 16 lanes, ≤ 1024 with 8), a whole
/// number of tiles.
pub(crate) fn flush_cols(k: usize) -> usize {
    let t = tile_cols(k);
    t * (8192 / t).max(1)
}

/// The lower triangle (and diagonal) of the rows' Gram matrix, added to `g` (m×m, row-major).
///
/// Columns are processed in tiles ([`tile_cols`]) so that each row's tile slice is read from
/// memory once and reused from the L1 cache for all its products; rows are taken in pairs
/// against blocks of four ([`block2x4`]), the triangle's edge row by row ([`row_products`]).
/// Each pair keeps its vector accumulator across the tiles of a [`flush_cols`] block and is
/// reduced to f64 once per block (reducing per tile cost as much as the products for K = 40,
/// where tiles are 256 columns wide). The last `n mod N` columns are added in f64.
///
/// # Safety
/// The CPU must support `V`'s instructions.
#[inline(always)]
unsafe fn gram_lower_with<V: Lanes>(rows: &[&[f32]], n: usize, g: &mut [f64]) {
    let m = rows.len();
    let t = tile_cols(m);
    let flush = flush_cols(m);
    let body = n - n % V::N;
    // SAFETY: the caller guarantees the CPU.
    let zero = unsafe { V::zero() };
    let mut acc = vec![zero; m * m];
    let mut tile: Vec<&[f32]> = Vec::with_capacity(m);
    let mut block_start = 0;
    while block_start < body {
        let block_end = (block_start + flush).min(body);
        let mut start = block_start;
        while start < block_end {
            let end = (start + t).min(block_end);
            tile.clear();
            tile.extend(rows.iter().map(|r| &r[start..end]));
            let mut i = 0;
            while i + 1 < m {
                // Rows i and i+1 against rows j..j+4 with j + 3 ≤ i (inside both triangles).
                let mut j = 0;
                while j + 4 <= i + 1 {
                    let b = [tile[j], tile[j + 1], tile[j + 2], tile[j + 3]];
                    let (r0, r1) = (i * m + j, (i + 1) * m + j);
                    let mut s = [
                        [acc[r0], acc[r0 + 1], acc[r0 + 2], acc[r0 + 3]],
                        [acc[r1], acc[r1 + 1], acc[r1 + 2], acc[r1 + 3]],
                    ];
                    // SAFETY: the caller guarantees the CPU.
                    unsafe { block2x4::<V>([tile[i], tile[i + 1]], b, &mut s) };
                    acc[r0..r0 + 4].copy_from_slice(&s[0]);
                    acc[r1..r1 + 4].copy_from_slice(&s[1]);
                    j += 4;
                }
                // SAFETY: the caller guarantees the CPU.
                unsafe {
                    row_products::<V>(&tile, i, j, &mut acc);
                    row_products::<V>(&tile, i + 1, j, &mut acc);
                }
                i += 2;
            }
            if i < m {
                // SAFETY: the caller guarantees the CPU.
                unsafe { row_products::<V>(&tile, i, 0, &mut acc) };
            }
            start = end;
        }
        for i in 0..m {
            for j in 0..=i {
                // SAFETY: the caller guarantees the CPU.
                g[i * m + j] += unsafe { acc[i * m + j].sum_f64() };
                acc[i * m + j] = zero;
            }
        }
        block_start = block_end;
    }
    for i in 0..m {
        for j in 0..=i {
            let tail = rows[i][body..n].iter().zip(&rows[j][body..n]);
            g[i * m + j] += tail
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum::<f64>();
        }
    }
}

/// `out[i·|b| + j] += ⟨a_i, b_j⟩` (f64) for every row `a_i` of `a` and `b_j` of `b` (all of
/// length `n`): the rectangular counterpart of [`gram_lower_with`], with the same tiles,
/// 2×4 blocks and per-block f64 reduction.
///
/// # Safety
/// The CPU must support `V`'s instructions.
#[inline(always)]
unsafe fn cross_with<V: Lanes>(a: &[&[f32]], b: &[&[f32]], n: usize, out: &mut [f64]) {
    let (ma, mb) = (a.len(), b.len());
    let t = tile_cols(ma + mb);
    let flush = flush_cols(ma + mb);
    let body = n - n % V::N;
    // SAFETY: the caller guarantees the CPU.
    let zero = unsafe { V::zero() };
    let mut acc = vec![zero; ma * mb];
    let mut block_start = 0;
    while block_start < body {
        let block_end = (block_start + flush).min(body);
        let mut start = block_start;
        while start < block_end {
            let end = (start + t).min(block_end);
            let ta: Vec<&[f32]> = a.iter().map(|r| &r[start..end]).collect();
            let tb: Vec<&[f32]> = b.iter().map(|r| &r[start..end]).collect();
            let mut i = 0;
            while i < ma {
                let pair = i + 1 < ma;
                let mut j = 0;
                while j + 4 <= mb {
                    let quad = [tb[j], tb[j + 1], tb[j + 2], tb[j + 3]];
                    let r0 = i * mb + j;
                    if pair {
                        let r1 = r0 + mb;
                        let mut s = [
                            [acc[r0], acc[r0 + 1], acc[r0 + 2], acc[r0 + 3]],
                            [acc[r1], acc[r1 + 1], acc[r1 + 2], acc[r1 + 3]],
                        ];
                        // SAFETY: the caller guarantees the CPU.
                        unsafe { block2x4::<V>([ta[i], ta[i + 1]], quad, &mut s) };
                        acc[r0..r0 + 4].copy_from_slice(&s[0]);
                        acc[r1..r1 + 4].copy_from_slice(&s[1]);
                    } else {
                        let mut s = [acc[r0], acc[r0 + 1], acc[r0 + 2], acc[r0 + 3]];
                        // SAFETY: the caller guarantees the CPU.
                        unsafe { block1x4::<V>(ta[i], quad, &mut s) };
                        acc[r0..r0 + 4].copy_from_slice(&s);
                    }
                    j += 4;
                }
                for jj in j..mb {
                    for q in 0..(1 + usize::from(pair)) {
                        // SAFETY: the caller guarantees the CPU.
                        unsafe { block1x1::<V>(ta[i + q], tb[jj], &mut acc[(i + q) * mb + jj]) };
                    }
                }
                i += 1 + usize::from(pair);
            }
            start = end;
        }
        for (o, v) in out.iter_mut().zip(acc.iter_mut()) {
            // SAFETY: the caller guarantees the CPU.
            *o += unsafe { v.sum_f64() };
            *v = zero;
        }
        block_start = block_end;
    }
    for i in 0..ma {
        for j in 0..mb {
            for c in body..n {
                out[i * mb + j] += f64::from(a[i][c]) * f64::from(b[j][c]);
            }
        }
    }
}

/// `out = w0·out + Σ w_k r_k`, one pass: each output vector is loaded once, all rows are
/// added to it in order, and it is stored once.
///
/// # Safety
/// The CPU must support `V`'s instructions.
#[inline(always)]
unsafe fn weighted_sum_with<V: Lanes>(out: &mut [f32], w0: f32, others: &[(f32, &[f32])]) {
    let n = out.len();
    for (_, r) in others {
        assert_eq!(r.len(), n, "rows of equal length");
    }
    let body = n - n % V::N;
    let po = out.as_mut_ptr();
    // SAFETY: every offset i < body ≤ n leaves N values in `out` and in every row; the
    // caller guarantees the CPU.
    unsafe {
        let vw0 = V::splat(w0);
        let ws: Vec<(V, *const f32)> = others
            .iter()
            .map(|(w, r)| (V::splat(*w), r.as_ptr()))
            .collect();
        let mut i = 0;
        while i < body {
            let mut o = V::load(po.add(i)).mul(vw0);
            for (w, p) in &ws {
                o = o.madd(*w, V::load(p.add(i)));
            }
            o.store(po.add(i));
            i += V::N;
        }
    }
    for c in body..n {
        let mut v = out[c] * w0;
        for (w, r) in others {
            v += w * r[c];
        }
        out[c] = v;
    }
}

/// Defines `fn $name(args) -> ret` that runs `$kernel::<V>(args)` with the widest lanes this
/// CPU has: AVX-512, AVX2 + FMA (each compiled in a function that enables those features, and
/// chosen after a run-time check), or the portable lanes.
macro_rules! multiversion {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? = $kernel:ident;) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: AVX-512F is enabled here; the caller checked the CPU.
                    unsafe { $kernel::<x86::Avx512>($($arg),*) }
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: AVX2 and FMA are enabled here; the caller checked the CPU.
                    unsafe { $kernel::<x86::Avx2>($($arg),*) }
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports AVX-512F (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            // SAFETY: portable lanes run on any CPU.
            unsafe { $kernel::<Portable>($($arg),*) }
        }
    };
}

multiversion! {
    /// The lower triangle of the rows' Gram matrix added to `g` ([`gram_lower_with`]).
    fn gram_lower(rows: &[&[f32]], n: usize, g: &mut [f64]) = gram_lower_with;
}

multiversion! {
    /// `out[i·|b| + j] += ⟨a_i, b_j⟩` for all row pairs ([`cross_with`]).
    fn cross(a: &[&[f32]], b: &[&[f32]], n: usize, out: &mut [f64]) = cross_with;
}

multiversion! {
    /// `⟨a, b⟩` in f64 ([`dot1`]).
    fn dot(a: &[f32], b: &[f32]) -> f64 = dot1;
}

multiversion! {
    /// `out = w0·out + Σ w_k r_k` ([`weighted_sum_with`]).
    fn weighted_sum_into(out: &mut [f32], w0: f32, others: &[(f32, &[f32])]) = weighted_sum_with;
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Lanes;

    #[derive(Clone, Copy)]
    pub(super) struct Avx512(__m512);

    impl Lanes for Avx512 {
        const N: usize = 16;
        #[inline(always)]
        unsafe fn zero() -> Self {
            // SAFETY: the caller guarantees AVX-512F.
            Avx512(unsafe { _mm512_setzero_ps() })
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            // SAFETY: the caller guarantees AVX-512F.
            Avx512(unsafe { _mm512_set1_ps(v) })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller guarantees AVX-512F and 16 readable values.
            Avx512(unsafe { _mm512_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: the caller guarantees AVX-512F and room for 16 values.
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn madd(self, a: Self, b: Self) -> Self {
            // SAFETY: the caller guarantees AVX-512F.
            Avx512(unsafe { _mm512_fmadd_ps(a.0, b.0, self.0) })
        }
        #[inline(always)]
        unsafe fn mul(self, b: Self) -> Self {
            // SAFETY: the caller guarantees AVX-512F.
            Avx512(unsafe { _mm512_mul_ps(self.0, b.0) })
        }
    }

    #[derive(Clone, Copy)]
    pub(super) struct Avx2(__m256);

    impl Lanes for Avx2 {
        const N: usize = 8;
        #[inline(always)]
        unsafe fn zero() -> Self {
            // SAFETY: the caller guarantees AVX.
            Avx2(unsafe { _mm256_setzero_ps() })
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            // SAFETY: the caller guarantees AVX.
            Avx2(unsafe { _mm256_set1_ps(v) })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller guarantees AVX and 8 readable values.
            Avx2(unsafe { _mm256_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: the caller guarantees AVX and room for 8 values.
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn madd(self, a: Self, b: Self) -> Self {
            // SAFETY: the caller guarantees FMA.
            Avx2(unsafe { _mm256_fmadd_ps(a.0, b.0, self.0) })
        }
        #[inline(always)]
        unsafe fn mul(self, b: Self) -> Self {
            // SAFETY: the caller guarantees AVX.
            Avx2(unsafe { _mm256_mul_ps(self.0, b.0) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn rows(k: usize, n: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut s = seed;
        (0..k)
            .map(|_| (0..n).map(|_| lcg(&mut s)).collect())
            .collect()
    }

    /// Every kernel the CPU can run (and the baseline) against an f64 reference, for sizes
    /// around the tile and lane boundaries and K around the 4-row blocking.
    #[test]
    fn gram_and_sum_match_f64_reference() {
        for k in [1, 2, 3, 4, 5, 9, 13, 40] {
            for n in [
                0,
                1,
                15,
                16,
                17,
                255,
                1000,
                tile_cols(k) + 3,
                3 * tile_cols(k),
                2 * flush_cols(k) + 5,
            ] {
                let r = rows(k, n, (k * 1000 + n) as u64);
                let slices: Vec<&[f32]> = r.iter().map(|v| &v[..]).collect();
                let mut expect = vec![0.0f64; k * k];
                let mut abs = vec![0.0f64; k * k];
                for i in 0..k {
                    for j in 0..=i {
                        let p = (0..n).map(|c| f64::from(r[i][c]) * f64::from(r[j][c]));
                        expect[i * k + j] = p.clone().sum();
                        abs[i * k + j] = p.map(f64::abs).sum();
                    }
                }
                // f32 rounding of ≤ m sums per lane (flush block / 8 lanes), as a random walk: a
                // missing or doubled product (≈ 1/3 here) is far outside it.
                let m = n.min(flush_cols(k)).div_ceil(8).max(1) as f64;
                let tol = |ij: usize| 4.0 * m.sqrt() * f64::from(f32::EPSILON) * abs[ij] + 1e-12;
                let mut kernels: Vec<(&str, Vec<f64>)> = Vec::new();
                let mut g = vec![0.0; k * k];
                // SAFETY: portable lanes run on any CPU.
                unsafe { gram_lower_with::<Portable>(&slices, n, &mut g) };
                kernels.push(("portable", g));
                let mut g = vec![0.0; k * k];
                gram_lower(&slices, n, &mut g);
                kernels.push(("dispatched", g));
                for (name, g) in kernels {
                    for i in 0..k {
                        for j in 0..=i {
                            let (a, b) = (g[i * k + j], expect[i * k + j]);
                            assert!(
                                (a - b).abs() <= tol(i * k + j),
                                "{name} K={k} n={n} ({i},{j}): {a} vs {b}"
                            );
                        }
                    }
                }
                // Weighted sum.
                if k >= 1 {
                    let w: Vec<f32> = (0..k).map(|i| 0.5 - i as f32 * 0.25).collect();
                    let h = HostRows {
                        rows: r.iter().cloned().map(Some).collect(),
                        n,
                    };
                    let d = h.combine(&w);
                    let mut portable = r[0].clone();
                    let others: Vec<(f32, &[f32])> = (1..k).map(|i| (w[i], &r[i][..])).collect();
                    // SAFETY: portable lanes run on any CPU.
                    unsafe { weighted_sum_with::<Portable>(&mut portable, w[0], &others) };
                    for c in 0..n {
                        let terms = (0..k).map(|i| f64::from(w[i]) * f64::from(r[i][c]));
                        let e: f64 = terms.clone().sum();
                        // K sequential f32 roundings.
                        let tol = 2.0
                            * k as f64
                            * f64::from(f32::EPSILON)
                            * terms.map(f64::abs).sum::<f64>()
                            + 1e-12;
                        assert!((f64::from(d[c]) - e).abs() <= tol, "K={k} n={n} col {c}");
                        assert!(
                            (f64::from(portable[c]) - e).abs() <= tol,
                            "portable K={k} n={n}"
                        );
                    }
                }
            }
        }
    }

    /// The moving average against an f64 reference: `B Bᵀ`, `B Jᵀ` (absent row: zero column),
    /// the new buffer and `d`, for a size that crosses tiles, flush blocks and the lane tail.
    #[test]
    fn moving_average_matches_reference() {
        let (k, n) = (5, 2 * flush_cols(6) + 7);
        let r = rows(k, n, 99);
        let b = rows(k, n, 7).concat();
        let h = HostRows {
            rows: r
                .iter()
                .enumerate()
                .map(|(t, v)| (t != 2).then(|| v.clone()))
                .collect(),
            n,
        };
        let (prev, cross) = h.history_grams(&b);
        let g = |t: usize, c: usize| if t == 2 { 0.0 } else { f64::from(r[t][c]) };
        let bb = |t: usize, c: usize| f64::from(b[t * n + c]);
        for a in 0..k {
            for l in 0..k {
                let p: f64 = (0..n).map(|c| bb(a, c) * bb(l, c)).sum();
                let x: f64 = (0..n).map(|c| bb(a, c) * g(l, c)).sum();
                assert!(
                    (prev[a * k + l] - p).abs() <= 1e-6 * n as f64,
                    "BBᵀ ({a},{l})"
                );
                assert!(
                    (cross[a * k + l] - x).abs() <= 1e-6 * n as f64,
                    "BJᵀ ({a},{l})"
                );
            }
        }
        let (decay, scale, w) = (
            0.9f32,
            [1.0f32, 0.5, 2.0, 0.25, 1.5],
            [0.3f32, -0.2, 0.1, 0.4, 0.4],
        );
        let (d, new) = h.moving_average(Some(b.clone()), decay, &scale, &w);
        for c in (0..n).step_by(97) {
            let mut e = 0.0;
            for t in 0..k {
                let v = f64::from(decay) * bb(t, c) + f64::from(scale[t]) * g(t, c);
                assert!(
                    (f64::from(new[t * n + c]) - v).abs() <= 1e-5,
                    "buffer ({t},{c})"
                );
                e += f64::from(w[t]) * v;
            }
            assert!((f64::from(d[c]) - e).abs() <= 1e-5, "d col {c}");
        }
    }

    /// Absent rows are zero rows: their Gram entries stay zero, their weight is ignored.
    #[test]
    fn absent_rows_are_zero() {
        let r = rows(2, 100, 7);
        let h = HostRows {
            rows: vec![None, Some(r[0].clone()), None, Some(r[1].clone())],
            n: 100,
        };
        let mut g = vec![0.0; 16];
        h.gram_into(&mut g);
        for i in 0..4 {
            for j in 0..4 {
                let present = (i == 1 || i == 3) && (j == 1 || j == 3);
                assert_eq!(g[i * 4 + j] != 0.0, present, "({i},{j})");
                assert_eq!(g[i * 4 + j], g[j * 4 + i]);
            }
        }
        let d = h.combine(&[9.0, 1.0, 9.0, 2.0]);
        for c in 0..100 {
            assert!((d[c] - (r[0][c] + 2.0 * r[1][c])).abs() <= 1e-6);
        }
        let empty = HostRows {
            rows: vec![None, None],
            n: 3,
        };
        assert_eq!(empty.combine(&[1.0, 1.0]), vec![0.0; 3]);
    }
}

/// Kernel timings at K = 10, n = 1e7 and K = 40, n = 2.5e6 against one read of the rows (prints, asserts nothing
/// about time): `cargo test --release -p burn-mtl --lib host::timing -- --ignored --nocapture`.
#[cfg(test)]
mod timing {
    use super::*;
    use std::time::Instant;

    #[test]
    #[ignore = "prints kernel timings; run by hand"]
    fn kernel_timings() {
        for (k, n) in [(10, 10_000_000), (40, 2_500_000)] {
            kernel_timing(k, n);
        }
    }

    fn kernel_timing(k: usize, n: usize) {
        let rows: Vec<Vec<f32>> = (0..k)
            .map(|i| {
                (0..n)
                    .map(|c| ((c * 7 + i * 13) % 101) as f32 * 0.01)
                    .collect()
            })
            .collect();
        let slices: Vec<&[f32]> = rows.iter().map(|v| &v[..]).collect();
        let best = |f: &mut dyn FnMut() -> f64| (0..5).map(|_| f()).fold(f64::INFINITY, f64::min);
        let read = best(&mut || {
            let t = Instant::now();
            const LANES: usize = 16;
            let mut acc = [0.0f32; LANES];
            for r in &slices {
                for x in r.as_chunks::<LANES>().0 {
                    for l in 0..LANES {
                        acc[l] += x[l];
                    }
                }
            }
            std::hint::black_box(acc);
            t.elapsed().as_secs_f64()
        });
        let gram = best(&mut || {
            let mut g = vec![0.0; k * k];
            let t = Instant::now();
            gram_lower(&slices, n, &mut g);
            std::hint::black_box(&g);
            t.elapsed().as_secs_f64()
        });
        let mut out = rows[0].clone();
        let others: Vec<(f32, &[f32])> = slices[1..].iter().map(|r| (0.1, *r)).collect();
        let sum = best(&mut || {
            let t = Instant::now();
            weighted_sum_into(&mut out, 0.1, &others);
            t.elapsed().as_secs_f64()
        });
        println!(
            "K={k} n={n}: read {:.1} ms, gram {:.1} ms ({:.2}x), weighted sum {:.1} ms ({:.2}x)",
            read * 1e3,
            gram * 1e3,
            gram / read,
            sum * 1e3,
            sum / read
        );
    }
}
