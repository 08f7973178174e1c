//! A reader (and writer, for tests) of the IDX format of MNIST and Fashion-MNIST, plain or
//! gzipped.
//!
//! IDX: a big-endian header `0x00 0x00 <type> <ndim>`, then `ndim` big-endian `u32` sizes, then
//! the values in row-major order. Only unsigned bytes (type `0x08`) are supported, which is what
//! both data sets use: `0x0000_0803` for images (`n × rows × cols`), `0x0000_0801` for labels.
//! A file is treated as gzip when its first two bytes are the gzip magic `1f 8b`.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

/// Why an IDX file could not be read.
#[derive(Debug)]
pub enum IdxError {
    /// The file could not be opened or decompressed.
    Io {
        /// The file (empty for in-memory input).
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The header is not an IDX header.
    BadMagic {
        /// The first four bytes.
        magic: [u8; 4],
    },
    /// The element type is not unsigned byte (`0x08`).
    UnsupportedType(u8),
    /// The data has a different rank than expected (e.g. labels that are not 1-D).
    Rank {
        /// Expected number of dimensions.
        expected: usize,
        /// Found.
        found: usize,
    },
    /// The file is shorter or longer than its header says.
    Length {
        /// Bytes the header implies.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// Images and labels of one split disagree on the number of items.
    CountMismatch {
        /// Number of images.
        images: usize,
        /// Number of labels.
        labels: usize,
    },
}

impl fmt::Display for IdxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdxError::Io { path, source } => {
                write!(f, "cannot read IDX file {}: {source}", path.display())
            }
            IdxError::BadMagic { magic } => write!(
                f,
                "not an IDX file: header {magic:02x?} (expected 00 00 08 <ndim>)"
            ),
            IdxError::UnsupportedType(t) => write!(
                f,
                "IDX element type 0x{t:02x} is not supported (only 0x08, unsigned byte)"
            ),
            IdxError::Rank { expected, found } => {
                write!(f, "IDX data has {found} dimensions, expected {expected}")
            }
            IdxError::Length { expected, found } => write!(
                f,
                "IDX data is {found} bytes but its header implies {expected} (truncated or corrupt file)"
            ),
            IdxError::CountMismatch { images, labels } => {
                write!(f, "{images} images but {labels} labels")
            }
        }
    }
}

impl std::error::Error for IdxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IdxError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The sizes of the dimensions.
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

/// Parses an (uncompressed or gzipped) IDX file held in memory.
pub fn parse_idx(bytes: &[u8]) -> Result<IdxArray, IdxError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        GzDecoder::new(bytes)
            .read_to_end(&mut plain)
            .map_err(|source| IdxError::Io {
                path: PathBuf::new(),
                source,
            })?;
        return parse_plain(&plain);
    }
    parse_plain(bytes)
}

fn parse_plain(bytes: &[u8]) -> Result<IdxArray, IdxError> {
    if bytes.len() < 4 {
        return Err(IdxError::Length {
            expected: 4,
            found: bytes.len(),
        });
    }
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if magic[0] != 0 || magic[1] != 0 {
        return Err(IdxError::BadMagic { magic });
    }
    if magic[2] != 0x08 {
        return Err(IdxError::UnsupportedType(magic[2]));
    }
    let ndim = magic[3] as usize;
    if ndim == 0 {
        return Err(IdxError::BadMagic { magic });
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(IdxError::Length {
            expected: header,
            found: bytes.len(),
        });
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|n| n.checked_add(header))
        .ok_or(IdxError::Length {
            expected: usize::MAX,
            found: bytes.len(),
        })?;
    if bytes.len() != n {
        return Err(IdxError::Length {
            expected: n,
            found: bytes.len(),
        });
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Reads an IDX file (plain or gzipped) from disk.
pub fn read_idx(path: &Path) -> Result<IdxArray, IdxError> {
    let bytes = std::fs::read(path).map_err(|source| IdxError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_idx(&bytes).map_err(|e| match e {
        IdxError::Io { source, .. } => IdxError::Io {
            path: path.to_path_buf(),
            source,
        },
        other => other,
    })
}

/// Grey-scale images: `n` images of `rows × cols` bytes, row-major, one after the other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    /// Number of images.
    pub n: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `n · rows · cols` pixels (0 = background).
    pub pixels: Vec<u8>,
}

impl Images {
    /// Image `i`'s pixels (`rows · cols` bytes). Panics if `i >= n`.
    pub fn image(&self, i: usize) -> &[u8] {
        let s = self.rows * self.cols;
        &self.pixels[i * s..(i + 1) * s]
    }

    /// The first `n` images (all if there are fewer).
    pub fn truncated(mut self, n: usize) -> Self {
        self.n = self.n.min(n);
        self.pixels.truncate(self.n * self.rows * self.cols);
        self
    }
}

/// Interprets an IDX array as images (3-D: `n × rows × cols`).
pub fn to_images(a: IdxArray) -> Result<Images, IdxError> {
    match a.dims.as_slice() {
        &[n, rows, cols] => Ok(Images {
            n,
            rows,
            cols,
            pixels: a.data,
        }),
        d => Err(IdxError::Rank {
            expected: 3,
            found: d.len(),
        }),
    }
}

/// Interprets an IDX array as labels (1-D).
pub fn to_labels(a: IdxArray) -> Result<Vec<u8>, IdxError> {
    if a.dims.len() != 1 {
        return Err(IdxError::Rank {
            expected: 1,
            found: a.dims.len(),
        });
    }
    Ok(a.data)
}

/// Reads an IDX image file (plain or gzipped).
pub fn read_images(path: &Path) -> Result<Images, IdxError> {
    to_images(read_idx(path)?)
}

/// Reads an IDX label file (plain or gzipped).
pub fn read_labels(path: &Path) -> Result<Vec<u8>, IdxError> {
    to_labels(read_idx(path)?)
}

/// Reads one split (images and labels) and checks that the counts agree.
pub fn read_split(images: &Path, labels: &Path) -> Result<(Images, Vec<u8>), IdxError> {
    let im = read_images(images)?;
    let lb = read_labels(labels)?;
    if im.n != lb.len() {
        return Err(IdxError::CountMismatch {
            images: im.n,
            labels: lb.len(),
        });
    }
    Ok((im, lb))
}

/// Writes an unsigned-byte IDX array (uncompressed) to `w`: used by tests and to make small
/// synthetic data sets. Errors if `data.len()` is not the product of `dims` or a size does not
/// fit in `u32`.
pub fn write_idx(mut w: impl Write, dims: &[usize], data: &[u8]) -> io::Result<()> {
    let n: usize = dims.iter().product();
    if n != data.len() || dims.is_empty() || dims.len() > 255 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "IDX dims {dims:?} do not match {} bytes of data",
                data.len()
            ),
        ));
    }
    w.write_all(&[0, 0, 0x08, dims.len() as u8])?;
    for &d in dims {
        let d = u32::try_from(d).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "IDX dimension over u32::MAX")
        })?;
        w.write_all(&d.to_be_bytes())?;
    }
    w.write_all(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    fn idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        write_idx(&mut v, dims, data).unwrap();
        v
    }

    #[test]
    fn header_layout_is_big_endian() {
        let v = idx(&[2, 1, 3], &[1, 2, 3, 4, 5, 6]);
        assert_eq!(&v[..16], &[0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3]);
        assert_eq!(&v[16..], &[1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn reads_plain_and_gzipped_images() {
        let pixels: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8).collect();
        let plain = idx(&[2, 3, 4], &pixels);
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        for bytes in [&plain, &gz] {
            let im = to_images(parse_idx(bytes).unwrap()).unwrap();
            assert_eq!((im.n, im.rows, im.cols), (2, 3, 4));
            assert_eq!(im.image(1), &pixels[12..24]);
        }
    }

    #[test]
    fn reads_labels_and_checks_rank() {
        let l = to_labels(parse_idx(&idx(&[3], &[7, 0, 9])).unwrap()).unwrap();
        assert_eq!(l, vec![7, 0, 9]);
        let e = to_labels(parse_idx(&idx(&[1, 3], &[7, 0, 9])).unwrap()).unwrap_err();
        assert!(matches!(
            e,
            IdxError::Rank {
                expected: 1,
                found: 2
            }
        ));
        assert!(to_images(parse_idx(&idx(&[3], &[1, 2, 3])).unwrap()).is_err());
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        assert!(matches!(parse_idx(&[]), Err(IdxError::Length { .. })));
        assert!(matches!(
            parse_idx(&[1, 2, 3, 4]),
            Err(IdxError::BadMagic { .. })
        ));
        // Type 0x0d (f32) is not supported.
        assert!(matches!(
            parse_idx(&[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]),
            Err(IdxError::UnsupportedType(0x0d))
        ));
        // Truncated payload and truncated header.
        let mut v = idx(&[2, 2], &[1, 2, 3, 4]);
        v.pop();
        let e = parse_idx(&v).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        assert!(matches!(
            parse_idx(&[0, 0, 8, 2, 0, 0]),
            Err(IdxError::Length { .. })
        ));
        // A broken gzip stream.
        assert!(matches!(
            parse_idx(&[0x1f, 0x8b, 0, 0]),
            Err(IdxError::Io { .. })
        ));
        // Huge dims cannot overflow.
        assert!(
            parse_idx(&[
                0, 0, 8, 3, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255
            ])
            .is_err()
        );
        assert!(write_idx(Vec::new(), &[2, 2], &[1, 2, 3]).is_err());
    }

    #[test]
    fn split_counts_must_agree() {
        let dir = std::env::temp_dir().join(format!("idx-split-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (im, lb) = (dir.join("im"), dir.join("lb"));
        std::fs::write(&im, idx(&[2, 1, 1], &[5, 6])).unwrap();
        std::fs::write(&lb, idx(&[3], &[1, 2, 3])).unwrap();
        let e = read_split(&im, &lb).unwrap_err();
        assert!(matches!(
            e,
            IdxError::CountMismatch {
                images: 2,
                labels: 3
            }
        ));
        let e = read_images(&dir.join("absent")).unwrap_err();
        assert!(e.to_string().contains("absent"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
