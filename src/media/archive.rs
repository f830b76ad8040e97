//! Expanding uploaded archives (.zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz) into their files, in memory.
//!
//! Archives come from strangers, so expansion is defensive: bytes are counted while they are
//! decompressed and expansion stops as soon as a limit is crossed (a zip bomb is never inflated
//! whole), member paths that could escape a folder and links are refused, and the member count is
//! capped. Nothing is written to disk. Nested archives are returned as ordinary members.

use std::io::{self, Cursor, Read};

use bytes::Bytes;

use super::error::{trim_chars, MediaError};
use super::prepare::MediaLimits;

/// One regular file from an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveMember {
    /// The member's path inside the archive (relative, `/`-separated, without a leading `./`).
    pub name: String,
    /// The member's content.
    pub bytes: Bytes,
}

/// Expands `bytes` (an archive named `file_name`) into its regular files, in archive order, skipping
/// directories. The whole archive is refused when it has more than `max_archive_members` files,
/// expands past `max_expanded_bytes` or past `max_compression_ratio` times its own size, or holds an
/// absolute path, a `..` component, or a symbolic or hard link. Blocking and CPU-bound: from async
/// code use [`expand_archive_async`].
pub fn expand_archive(file_name: &str, bytes: &[u8], limits: &MediaLimits) -> Result<Vec<ArchiveMember>, MediaError> {
    let budget = limits.max_expanded_bytes.min(limits.max_compression_ratio.saturating_mul(bytes.len() as u64).max(1));
    let mut ex = Expander { file: file_name, limits, budget, used: 0, members: Vec::new() };
    let at = |offset: usize, magic: &[u8]| bytes.get(offset..offset + magic.len()) == Some(magic);
    if at(0, b"PK\x03\x04") || at(0, b"PK\x05\x06") {
        ex.zip(bytes)?;
    } else if at(0, &[0x1F, 0x8B]) {
        ex.compressed(flate2::read::MultiGzDecoder::new(bytes), &[".tgz", ".gz"])?;
    } else if at(0, b"BZh") {
        ex.compressed(bzip2::read::MultiBzDecoder::new(bytes), &[".tbz2", ".tbz", ".bz2"])?;
    } else if at(0, &[0xFD, b'7', b'z', b'X', b'Z', 0]) {
        ex.compressed(liblzma::read::XzDecoder::new_multi_decoder(bytes), &[".txz", ".xz"])?;
    } else if is_tar_header(bytes) {
        ex.tar(bytes)?;
    } else {
        return Err(MediaError::ArchiveUnsupported { file: file_name.to_string() });
    }
    Ok(ex.members)
}

/// [`expand_archive`] on a blocking thread, so decompression never stalls the async runtime.
pub async fn expand_archive_async(
    file_name: String,
    bytes: Bytes,
    limits: MediaLimits,
) -> Result<Vec<ArchiveMember>, MediaError> {
    let name = file_name.clone();
    tokio::task::spawn_blocking(move || expand_archive(&file_name, &bytes, &limits)).await.unwrap_or_else(|e| {
        Err(MediaError::ArchiveCorrupt { file: name, detail: format!("the expansion task failed: {e}") })
    })
}

/// A POSIX (`ustar`) or GNU tar header starts the data.
fn is_tar_header(bytes: &[u8]) -> bool {
    bytes.len() >= 512 && bytes.get(257..262) == Some(b"ustar")
}

/// The state of one expansion: limits, bytes produced so far, and the members found.
struct Expander<'a> {
    file: &'a str,
    limits: &'a MediaLimits,
    /// The most decompressed bytes this archive may produce.
    budget: u64,
    /// Member bytes produced so far.
    used: u64,
    members: Vec<ArchiveMember>,
}

/// Marks an io::Error raised by [`Budgeted`] so it is reported as "too large" and not as corrupt.
#[derive(Debug)]
struct OverBudget;

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("expansion limit reached")
    }
}

impl std::error::Error for OverBudget {}

/// A reader that fails once more than `left` bytes have come through, so a decompression stream
/// (including tar headers and padding) can never run past the archive's budget.
struct Budgeted<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::other(OverBudget));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn is_over_budget(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<OverBudget>())
}

impl Expander<'_> {
    fn too_large(&self) -> MediaError {
        MediaError::ArchiveTooLarge { file: self.file.to_string(), limit: self.budget }
    }

    fn corrupt(&self, detail: impl std::fmt::Display) -> MediaError {
        MediaError::ArchiveCorrupt { file: self.file.to_string(), detail: trim_chars(&detail.to_string(), 200) }
    }

    fn io_error(&self, e: io::Error) -> MediaError {
        if is_over_budget(&e) {
            self.too_large()
        } else {
            self.corrupt(e)
        }
    }

    /// Refuses absolute paths, drive letters and `..`; returns the cleaned relative name, or `None`
    /// for a name with nothing left (such as `./`).
    fn safe_name(&self, raw: &str) -> Result<Option<String>, MediaError> {
        let unsafe_path = || MediaError::ArchiveUnsafePath { file: self.file.to_string(), member: raw.to_string() };
        let drive = raw.len() >= 2 && raw.as_bytes()[1] == b':' && raw.as_bytes()[0].is_ascii_alphabetic();
        if raw.starts_with('/') || raw.starts_with('\\') || drive || raw.contains('\0') {
            return Err(unsafe_path());
        }
        let mut parts = Vec::new();
        for part in raw.split(['/', '\\']) {
            match part {
                ".." => return Err(unsafe_path()),
                "" | "." => {}
                p => parts.push(p),
            }
        }
        Ok((!parts.is_empty()).then(|| parts.join("/")))
    }

    /// Reads one member's content through the remaining budget and records it.
    fn add(&mut self, name: String, reader: &mut dyn Read, declared: u64) -> Result<(), MediaError> {
        if self.members.len() >= self.limits.max_archive_members {
            return Err(MediaError::ArchiveTooManyMembers {
                file: self.file.to_string(),
                max: self.limits.max_archive_members,
            });
        }
        let left = self.budget - self.used;
        if declared > left {
            return Err(self.too_large());
        }
        let mut content = Vec::with_capacity(declared.min(left).min(64 << 20) as usize);
        reader.take(left + 1).read_to_end(&mut content).map_err(|e| self.io_error(e))?;
        if content.len() as u64 > left {
            return Err(self.too_large());
        }
        self.used += content.len() as u64;
        self.members.push(ArchiveMember { name, bytes: Bytes::from(content) });
        Ok(())
    }

    fn zip(&mut self, bytes: &[u8]) -> Result<(), MediaError> {
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| self.corrupt(e))?;
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i).map_err(|e| self.corrupt(e))?;
            let raw = entry.name().to_string();
            let Some(name) = self.safe_name(&raw)? else { continue };
            if entry.is_dir() {
                continue;
            }
            let is_link = entry.unix_mode().is_some_and(|m| m & 0o170000 == 0o120000);
            if is_link {
                return Err(MediaError::ArchiveLink { file: self.file.to_string(), member: raw });
            }
            let declared = entry.size();
            self.add(name, &mut entry, declared)?;
        }
        Ok(())
    }

    fn tar<R: Read>(&mut self, reader: R) -> Result<(), MediaError> {
        let mut archive = tar::Archive::new(reader);
        let entries = archive.entries().map_err(|e| self.io_error(e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.io_error(e))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let kind = entry.header().entry_type();
            let Some(name) = self.safe_name(&raw)? else { continue };
            if kind.is_symlink() || kind.is_hard_link() {
                return Err(MediaError::ArchiveLink { file: self.file.to_string(), member: raw });
            }
            if !(kind.is_file() || kind.is_contiguous()) {
                tracing::debug!(archive = self.file, member = raw, "skipping a non-regular tar entry");
                continue;
            }
            let declared = entry.size();
            self.add(name, &mut entry, declared)?;
        }
        Ok(())
    }

    /// A compressed stream: a tar inside, or else a single compressed file named after the archive.
    fn compressed<R: Read>(&mut self, decoder: R, suffixes: &[&str]) -> Result<(), MediaError> {
        // Headers and padding count too, with one spare block so a tar that exactly fills the
        // budget with content still has room for its end-of-archive marker.
        let mut stream = Budgeted { inner: decoder, left: self.budget.saturating_add(2048) };
        let mut head = Vec::with_capacity(512);
        (&mut stream).take(512).read_to_end(&mut head).map_err(|e| self.io_error(e))?;
        let whole = Cursor::new(head).chain(stream);
        if is_tar_header(whole.get_ref().0.get_ref()) {
            return self.tar(whole);
        }
        let base = self.file.rsplit(['/', '\\']).next().unwrap_or_default();
        let lower = base.to_ascii_lowercase();
        let name = suffixes
            .iter()
            .find_map(|s| lower.ends_with(s).then(|| base[..base.len() - s.len()].to_string()))
            .filter(|stem| !stem.is_empty())
            .unwrap_or_else(|| base.to_string());
        let mut whole = whole;
        self.add(name, &mut whole, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn limits() -> MediaLimits {
        MediaLimits::default()
    }

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            // set_path refuses `..` and absolute paths, so write the name bytes directly.
            let field = &mut h.as_old_mut().name;
            field[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        z.add_directory("dir/", opts).unwrap();
        for (name, data) in files {
            z.start_file(*name, opts).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap().into_inner()
    }

    const FILES: &[(&str, &[u8])] = &[("a.txt", b"hello"), ("dir/b.wav", b"RIFF....WAVE"), ("c.zip", b"PK\x03\x04x")];

    fn names(m: &[ArchiveMember]) -> Vec<&str> {
        m.iter().map(|m| m.name.as_str()).collect()
    }

    #[test]
    fn every_format_expands_to_its_members() {
        let tar = tar_of(FILES);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        bz.write_all(&tar).unwrap();
        let bz = bz.finish().unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(&tar).unwrap();
        let xz = xz.finish().unwrap();
        for (name, bytes) in
            [("a.zip", zip_of(FILES)), ("a.tar", tar), ("a.tar.gz", gz), ("a.tar.bz2", bz), ("a.tar.xz", xz)]
        {
            let members = expand_archive(name, &bytes, &limits()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(names(&members), ["a.txt", "dir/b.wav", "c.zip"], "{name}");
            assert_eq!(&members[0].bytes[..], b"hello");
            assert_eq!(&members[2].bytes[..], b"PK\x03\x04x", "nested archive returned as-is");
        }
    }

    #[test]
    fn single_gzipped_file_is_one_member() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"just text").unwrap();
        let members = expand_archive("notes.txt.gz", &gz.finish().unwrap(), &limits()).unwrap();
        assert_eq!(names(&members), ["notes.txt"]);
        assert_eq!(&members[0].bytes[..], b"just text");
    }

    #[test]
    fn unsafe_paths_and_links_are_refused() {
        for bad in ["../x", "/etc/x", "a/../../x"] {
            let err = expand_archive("t.tar", &tar_of(&[("ok", b"1"), (bad, b"2")]), &limits()).unwrap_err();
            assert!(matches!(err, MediaError::ArchiveUnsafePath { .. }), "{bad}: {err}");
            assert!(err.to_string().contains("t.tar"));
            let err = expand_archive("z.zip", &zip_of(&[(bad, b"2")]), &limits()).unwrap_err();
            assert!(matches!(err, MediaError::ArchiveUnsafePath { .. }), "zip {bad}: {err}");
        }
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "link", "/etc/passwd").unwrap();
        let err = expand_archive("l.tar", &b.into_inner().unwrap(), &limits()).unwrap_err();
        assert!(matches!(err, MediaError::ArchiveLink { .. }), "{err}");

        let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
        z.add_symlink("link", "/etc/passwd", zip::write::SimpleFileOptions::default()).unwrap();
        let err = expand_archive("l.zip", &z.finish().unwrap().into_inner(), &limits()).unwrap_err();
        assert!(matches!(err, MediaError::ArchiveLink { .. }), "{err}");
    }

    #[test]
    fn too_many_members_are_refused() {
        let many: Vec<(String, Vec<u8>)> = (0..101).map(|i| (format!("f{i}.txt"), vec![b'x'])).collect();
        let refs: Vec<(&str, &[u8])> = many.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
        let err = expand_archive("m.zip", &zip_of(&refs), &limits()).unwrap_err();
        assert!(matches!(err, MediaError::ArchiveTooManyMembers { max: 100, .. }), "{err}");
        let err = expand_archive("m.tar", &tar_of(&refs), &limits()).unwrap_err();
        assert!(matches!(err, MediaError::ArchiveTooManyMembers { .. }), "{err}");
        assert_eq!(expand_archive("m.zip", &zip_of(&refs[..100]), &limits()).unwrap().len(), 100);
    }

    #[test]
    fn bombs_are_refused_without_expanding_fully() {
        let zeros = vec![0u8; 50 << 20];
        let bomb = zip_of(&[("zeros.bin", &zeros)]);
        assert!(bomb.len() < 200_000, "bomb is {} bytes", bomb.len());
        let started = std::time::Instant::now();
        let err = expand_archive("bomb.zip", &bomb, &limits()).unwrap_err();
        assert!(matches!(err, MediaError::ArchiveTooLarge { .. }), "{err}");
        assert!(err.to_string().starts_with("bomb.zip expands to more than"), "{err}");

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&tar_of(&[("zeros.bin", &zeros)])).unwrap();
        let err = expand_archive("bomb.tar.gz", &gz.finish().unwrap(), &limits()).unwrap_err();
        assert!(matches!(err, MediaError::ArchiveTooLarge { .. }), "{err}");
        // The total cap applies too, whatever the ratio.
        let small = MediaLimits { max_expanded_bytes: 1000, ..limits() };
        let err = expand_archive("a.tar", &tar_of(&[("big", &[1u8; 2000])]), &small).unwrap_err();
        assert!(matches!(err, MediaError::ArchiveTooLarge { .. }), "{err}");
        println!("bomb refusals took {:?}", started.elapsed());
    }

    #[test]
    fn garbage_is_refused() {
        let err = expand_archive("x.zip", b"PK\x03\x04garbage", &limits()).unwrap_err();
        assert!(matches!(err, MediaError::ArchiveCorrupt { .. }), "{err}");
        let err = expand_archive("x.tgz", &[0x1F, 0x8B, 0, 1, 2, 3], &limits()).unwrap_err();
        assert!(matches!(err, MediaError::ArchiveCorrupt { .. }), "{err}");
        let err = expand_archive("x.rar", b"Rar!\x1a\x07", &limits()).unwrap_err();
        assert!(matches!(err, MediaError::ArchiveUnsupported { .. }), "{err}");
    }

    #[tokio::test]
    async fn async_wrapper_expands() {
        let members = expand_archive_async("a.zip".into(), Bytes::from(zip_of(FILES)), limits()).await.unwrap();
        assert_eq!(members.len(), 3);
    }
}
