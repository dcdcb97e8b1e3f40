"""Moving model archives: fetching bytes, extracting them safely, and packing a folder.

An archive comes from outside, so extraction trusts nothing in it: every member is checked
before anything is written (no absolute paths, no ``..``, no links, devices or FIFOs, no
duplicates), and files are written by us, byte by byte, with our own permissions, never by
``tarfile.extractall`` (which follows what the archive says). A truncated or corrupt archive
is reported with the name the caller knows it by (the URL or path), not a temporary file.
"""

from __future__ import annotations

import hashlib
import http.client
import lzma
import os
import re
import shutil
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tqdm.auto import tqdm

from framestream.errors import ArchiveError, DownloadError

CHUNK = 1 << 20
TIMEOUT_S = 60
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
_CORRUPT = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)


def is_url(source: str) -> bool:
    return bool(_SCHEME.match(source))


def local_path(source: str) -> Path | None:
    """The file a path or ``file://`` URL names; None for http(s)."""
    match = _SCHEME.match(source)
    if match is None:
        return Path(source).expanduser()
    scheme = match.group("scheme").lower()
    if scheme in ("http", "https"):
        return None
    if scheme != "file":
        raise DownloadError(f"{source}: unsupported URL scheme {scheme!r}; use http://, https://, "
                            "file:// or a local path")
    parts = urllib.parse.urlparse(source)
    if parts.netloc not in ("", "localhost"):
        raise DownloadError(f"{source}: file:// URLs must name a local file "
                            f"(host {parts.netloc!r})")
    return Path(urllib.request.url2pathname(parts.path))


def fetch(source: str, dest: Path, progress: bool | None = None) -> str:
    """Copy ``source`` (http(s) URL, file:// URL or path) to ``dest``; return its SHA-256.

    ``progress``: None shows a bar only on a terminal, True always, False never.
    """
    path = local_path(source)
    digest = hashlib.sha256()
    if path is not None:
        try:
            stream: BinaryIO = open(path, "rb")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise DownloadError(f"{source}: cannot open ({exc.strerror or exc})") from None
        total: int | None = os.fstat(stream.fileno()).st_size
    else:
        stream, total = _open_http(source)
    name = PurePosixPath(urllib.parse.urlparse(source).path if path is None else path.name).name
    bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name or "download",
               disable=None if progress is None else not progress, file=sys.stderr, leave=False)
    received = 0
    try:
        with stream, open(dest, "wb") as out:
            while chunk := stream.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"{source}: the transfer failed after {received} bytes "
                            f"({exc})") from None
    finally:
        bar.close()
    if total is not None and received != total:
        raise DownloadError(f"{source}: the transfer ended after {received} of {total} bytes")
    return digest.hexdigest()


def _open_http(url: str) -> tuple[BinaryIO, int | None]:
    request = urllib.request.Request(url, headers={"User-Agent": "framestream"})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)  # noqa: S310 (http(s) only)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"{url}: cannot connect ({reason})") from None
    length = response.headers.get("Content-Length")
    return response, int(length) if length and length.isdigit() else None


def sha256_of(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------
# Extracting


def _member_path(member: tarfile.TarInfo, label: str) -> PurePosixPath:
    """The member's relative path, or an ArchiveError saying why it is refused."""
    name = member.name
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise ArchiveError(f"{label}: member {name!r} has an absolute path; refusing to extract")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"{label}: member {name!r} points outside the archive folder ('..'); "
                           "refusing to extract")
    if member.issym() or member.islnk():
        kind = "a symbolic link" if member.issym() else "a hard link"
        raise ArchiveError(f"{label}: member {name!r} is {kind} (to {member.linkname!r}); model "
                           "archives may hold only files and folders")
    if not (member.isreg() or member.isdir()):
        kind = ("a device" if member.ischr() or member.isblk()
                else "a FIFO" if member.isfifo() else "a special file")
        raise ArchiveError(f"{label}: member {name!r} is {kind}; model archives may hold only "
                           "files and folders")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def extract(archive: Path, dest: Path, label: str) -> None:
    """Extract a tar archive (gzip, bz2, xz or plain) into the empty folder ``dest``.

    Every header is read and checked before anything is written; then regular files are
    copied out and their sizes checked, so a truncated archive fails here, naming ``label``.
    """
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = _checked_members(tar, label)
            for member, rel in members:
                target = dest.joinpath(*rel.parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                with source, open(target, "xb") as out:
                    copied = _copy(source, out)
                if copied != member.size:
                    raise ArchiveError(f"{label}: member {member.name!r} is truncated "
                                       f"({copied} of {member.size} bytes)")
            # tar stops at its end marker; reading the compressed stream to its end checks
            # its CRC and length too, so an archive cut anywhere is refused
            while tar.fileobj.read(CHUNK):
                pass
    except ArchiveError:
        raise
    except _CORRUPT as exc:
        if isinstance(exc, OSError) and not _is_format_error(exc):
            raise
        raise ArchiveError(f"{label}: not a readable tar archive, or truncated or corrupt "
                           f"({type(exc).__name__}: {exc})") from None


def _checked_members(tar: tarfile.TarFile,
                     label: str) -> list[tuple[tarfile.TarInfo, PurePosixPath]]:
    seen: dict[PurePosixPath, bool] = {}
    members = []
    for member in tar:  # reads through the whole stream: truncation shows up here or below
        rel = _member_path(member, label)
        if rel == PurePosixPath("."):
            continue
        if rel in seen:
            raise ArchiveError(f"{label}: member {member.name!r} appears twice; refusing to "
                               "extract")
        for parent in rel.parents:
            if seen.get(parent) is False:
                raise ArchiveError(f"{label}: member {member.name!r} is inside {str(parent)!r}, "
                                   "which is a file")
        seen[rel] = member.isdir()
        members.append((member, rel))
    if not members:
        raise ArchiveError(f"{label}: the archive is empty")
    return members


def _copy(source: BinaryIO, out: BinaryIO) -> int:
    copied = 0
    while chunk := source.read(CHUNK):
        out.write(chunk)
        copied += len(chunk)
    return copied


def _is_format_error(exc: OSError) -> bool:
    """gzip's BadGzipFile and bz2's 'Invalid data stream' are OSErrors without an errno;
    real I/O failures (disk full, permissions) have one and are re-raised as they are."""
    return exc.errno is None


# ------------------------------------------------------------------------------------------------
# Packing


def pack(folder: Path, arcname: str, out: Path) -> str:
    """Write ``folder``'s regular files as ``out`` (.tar.gz, top folder ``arcname``); SHA-256.

    The archive is written beside ``out`` and renamed into place, so ``out`` is either the
    old file or the complete new one. Owners are not recorded.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")

    def reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = 0o755 if info.isdir() else 0o644
        return info

    try:
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(folder, arcname=arcname, recursive=False, filter=reset)
            for path in sorted(folder.rglob("*")):
                if path.is_symlink() or not (path.is_file() or path.is_dir()):
                    continue
                rel = path.relative_to(folder).as_posix()
                tar.add(path, arcname=f"{arcname}/{rel}", recursive=False, filter=reset)
        digest = sha256_of(partial)
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return digest


def copy_folder(source: Path, dest: Path) -> None:
    """Copy a model folder's files and subfolders (no links) into the empty folder ``dest``."""
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_symlink():
            raise ArchiveError(f"{source}: {rel} is a symbolic link; model folders may hold only "
                               "files and folders")
        if path.is_dir():
            (dest / rel).mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            shutil.copyfile(path, dest / rel)
