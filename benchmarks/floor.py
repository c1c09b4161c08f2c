"""The floor the provider is measured against: the same I/O in plain Python.

Reads every input file the provider reads, line by line as a plain Python
program does, and writes exactly as many bytes as the provider printed, in one
write. No validation, no parsing, no templates, no libraries: what is left
is the interpreter's start and the reading and writing themselves.

    python benchmarks/floor.py BYTES FILE...
"""

import sys


def main() -> None:
    size = int(sys.argv[1])
    lines = []
    for name in sys.argv[2:]:
        with open(name, encoding="ascii", errors="replace") as stream:
            for line in stream:
                lines.append(line)
    text = "".join(lines) or "\n"
    repeats = size // len(text) + 1
    sys.stdout.write((text * repeats)[:size])
    sys.stdout.flush()


if __name__ == "__main__":
    main()
