"""A local path (a NAS mount is one): the few filesystem calls the Store makes, on `os`.

fsspec's LocalFileSystem would do as well, but importing fsspec (and asyncio with it) costs a
pod about 90 ms of its start, for nothing on a local root.
"""

from __future__ import annotations

import os
import shutil


class LocalFS:
    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def size(self, path: str) -> int:
        return os.path.getsize(path)

    def isdir(self, path: str) -> bool:
        return os.path.isdir(path)

    def rm(self, path: str, recursive: bool = False) -> None:
        if recursive and os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)

    def cat_file(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()
