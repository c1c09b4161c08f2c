"""The floor the provider is measured against: the same I/O in plain Python.

Reads every input file the provider reads, line by line as a plain Python
program does, and writes exactly as many bytes as the provider printed, in one
write, as the provider must (the BDII keeps nothing of a run it kills). The
output is the input repeated, made with one copy and written as it is. No
validation, no parsing, no templates, no libraries: what is left is the
interpreter's start, the reading, and the making and writing of the output.

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
    data = ("".join(lines) or "\n").encode("ascii", "replace")
    output = data * (size // len(data) + 1)
    sys.stdout.buffer.write(memoryview(output)[:size])
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
