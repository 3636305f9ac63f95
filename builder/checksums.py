"""sha256 of files, shared by the builder, the Ansible modules (through module_utils) and
the controller tools. Stdlib only: it runs on devices before the venv exists."""

import hashlib


def file_sha256(path, chunk_size=1024 * 1024):
    """Hex sha256 of a file, read in chunks (graphs are tens of MB; Nano has little RAM)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(chunk_size)
            if not chunk:
                break
            digest.update(chunk)
    return digest.hexdigest()
