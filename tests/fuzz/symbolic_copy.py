#!/usr/bin/env python3
"""Copies a shared library and sets DF_SYMBOLIC in its DT_FLAGS, for the sanitizer builds.

Usage: symbolic_copy.py SOURCE.so DEST.so

core/io/tokenizer.cpp dlopen()s the SentencePiece shim with RTLD_DEEPBIND so that the protobuf copy
inside Debian's libsentencepiece.so.0 binds to itself rather than to LibTorch's libprotobuf. ASan
refuses RTLD_DEEPBIND, and without it SentencePiece fails ("compiled against version 3.14.0 of the
Protocol Buffer runtime") or crashes. DF_SYMBOLIC asks the dynamic linker for the same thing,
limited to this one library: resolve its references in itself first. The sanitizer builds give the
shim such a copy next to it (CMakeLists.txt, DARTLENS_SANITIZE). Only an existing DT_FLAGS entry is
changed, so the file keeps its size and layout; a library without one is refused.
"""
import shutil
import struct
import sys

DT_NULL, DT_FLAGS, DF_SYMBOLIC, PT_DYNAMIC = 0, 30, 0x2, 2


def main(src, dst):
    data = bytearray(open(src, "rb").read())
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        sys.exit(f"symbolic_copy: {src}: not a little-endian 64-bit ELF file")
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type != PT_DYNAMIC:
            continue
        for off in range(p_offset, p_offset + p_filesz, 16):
            tag, value = struct.unpack_from("<qQ", data, off)
            if tag == DT_NULL:
                break
            if tag == DT_FLAGS:
                struct.pack_into("<qQ", data, off, tag, value | DF_SYMBOLIC)
                tmp = dst + ".tmp"
                with open(tmp, "wb") as f:
                    f.write(data)
                shutil.copymode(src, tmp)
                shutil.move(tmp, dst)
                return 0
    sys.exit(f"symbolic_copy: {src}: no DT_FLAGS entry to set DF_SYMBOLIC in")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.splitlines()[2])
    sys.exit(main(sys.argv[1], sys.argv[2]))
