//! Secret keys: `keygen` writes one, `pubkey` prints its public half.

use super::*;

pub(super) fn keygen(out: &Path, force: bool) -> Result<(), Failure> {
    let mut seed = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut seed) {
        return fail(format!("no OS randomness: {e}"));
    }
    let mut open = fs::OpenOptions::new();
    open.write(true);
    if force {
        open.create(true).truncate(true);
    } else {
        open.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(0o600);
    }
    let mut f = open.open(out).map_err(|e| {
        Failure(if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!("{} exists (use --force to replace it)", out.display())
        } else {
            format!("cannot create {}: {e}", out.display())
        })
    })?;
    f.write_all(format!("{}\n", hex::encode(seed)).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| Failure(format!("cannot write {}: {e}", out.display())))?;
    println!("{}", format_public_key(&public_key_of(&seed)));
    Ok(())
}

pub(super) fn read_secret(path: &Path) -> Result<[u8; 32], Failure> {
    let text = fs::read_to_string(path)
        .map_err(|e| Failure(format!("cannot read key {}: {e}", path.display())))?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| {
        Failure(format!(
            "{} is not a shoal-manifest key (64 hex digits)",
            path.display()
        ))
    })?;
    Ok(seed)
}

pub(super) fn pubkey(key: &Path) -> Result<(), Failure> {
    let seed = read_secret(key)?;
    println!("{}", format_public_key(&public_key_of(&seed)));
    Ok(())
}
