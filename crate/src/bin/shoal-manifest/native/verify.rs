//! `verify`: checks a manifest's signature and, with `--dir`, its entries against the files.

use super::*;

pub(super) fn verify(key: &[u8; 32], manifest: &Path, dir: Option<&Path>) -> Result<(), Failure> {
    let shown = manifest.display();
    let bytes = fs::read(manifest).map_err(|e| Failure(format!("cannot read {shown}: {e}")))?;
    let m = Manifest::parse_signed(&bytes, key).map_err(|e| Failure(format!("{shown}: {e}")))?;
    let mut checked = 0usize;
    if let Some(dir) = dir {
        let mut keys: Vec<&String> = m.entries.keys().collect();
        keys.sort();
        for k in keys {
            let Some(e) = m.entries.get(k) else { continue };
            let (name, range) = split_key(k);
            let data = read_range(&dir.join(percent_decode(name)?), range)
                .map_err(|e| Failure(format!("{k}: {e}")))?;
            shoal::integrity::verify_against(e, &data)
                .map_err(|err| Failure(format!("{k}: {err}")))?;
            for (i, c) in data.chunks(CHUNK_SIZE).enumerate() {
                let i = u32::try_from(i).unwrap_or(u32::MAX);
                if shoal::integrity::verify_chunk(e, m.chunk_size, i, c) == Some(false) {
                    return fail(format!("{k}: chunk {i} does not match"));
                }
            }
            checked += 1;
        }
    }
    println!(
        "{shown}: signature ok, {} entries{}",
        m.entries.len(),
        if dir.is_some() {
            format!(", {checked} files match")
        } else {
            String::new()
        }
    );
    Ok(())
}

/// `name@start-end` → (`name`, range); keys without a valid suffix are whole files.
pub(super) fn split_key(key: &str) -> (&str, Option<ByteRange>) {
    if let Some((name, r)) = key.rsplit_once('@') {
        if let Some((a, b)) = r.split_once('-') {
            if let (Ok(start), Ok(end)) = (a.parse(), b.parse()) {
                return (name, Some(ByteRange { start, end }));
            }
        }
    }
    (key, None)
}
