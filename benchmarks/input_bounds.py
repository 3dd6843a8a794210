"""Time and peak memory to refuse oversized inputs (issue 12 "Bounds"), each in a fresh process.

    python benchmarks/input_bounds.py [--notes 3500000]

1. A 19.97 MB MIDI file holding 3.49 M notes (note-on/off pairs with running status, just under the 20 MB
   size cap) given to ``read_song``: refused by the byte scan before mido/pretty_midi parse anything.
2. A 50 MB chord file: refused from its size.
3. A chord file just under the 2 MB cap, one ``BAR:BEAT CHORD`` line after another on a long song: parsed
   (linear: one binary search per line), then refused at its first out-of-range line at the end.

Prints wall seconds and the child's peak RSS (``VmHWM``, Linux) for each, next to a bare ``import harmonize.io.midi``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def big_midi(path: Path, notes: int) -> int:
    """A type-0 file: one track of ``notes`` note-on/note-off pairs with running status (6 bytes a note)."""
    body = bytearray(b"\x00\x90\x3c\x40")  # delta 0, note on C4, velocity 64 (status given once)
    pair = b"\x01\x3c\x00\x00\x3c\x40"  # delta 1 note-off (velocity 0), delta 0 note-on: running status
    body += pair * (notes - 1) + b"\x01\x3c\x00" + b"\x00\xff\x2f\x00"
    header = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big") + (480).to_bytes(2, "big")
    data = header + b"MTrk" + len(body).to_bytes(4, "big") + bytes(body)
    path.write_bytes(data)
    return len(data)


def child(code: str) -> tuple[float, float, str]:
    """Run ``code`` in a fresh interpreter: (wall s, peak RSS MB, last line it printed)."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forked parent (this script, which holds
    # the 20 MB file), VmHWM belongs to the child's own address space
    script = textwrap.dedent(code) + (
        "\nfrom pathlib import Path\n"
        "print('RSS', [l.split()[1] for l in Path('/proc/self/status').read_text().splitlines()"
        " if l.startswith('VmHWM')][0])\n")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    rss = float(lines[-1].split()[1]) / 1024 if lines and lines[-1].startswith("RSS") else float("nan")
    return wall, rss, lines[-2] if len(lines) > 1 else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=3_490_000, help="3.49 M notes: 20 MB less a few kB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        midi = tmp / "big.mid"
        size = big_midi(midi, args.notes)
        wall, rss, _ = child("import harmonize.io.midi, harmonize.io.chordfile")
        print(f"baseline: import harmonize.io.midi                 {wall:6.2f} s  peak RSS {rss:6.0f} MB")
        wall, rss, line = child(f"""
            from harmonize.io.midi import read_song
            from harmonize.errors import StripeError
            try:
                read_song({str(midi)!r})
            except StripeError as e:
                print(e)
        """)
        print(f"MIDI {size / 2**20:.1f} MB, {args.notes} notes: refused   {wall:6.2f} s  peak RSS {rss:6.0f} MB  ({line[-70:]})")
        chords = tmp / "big.txt"
        chords.write_bytes(b"0 C\n" * (50 * 2**20 // 4))
        code = """
            import numpy as np
            from harmonize.io.chordfile import read_chord_file
            from harmonize.errors import StripeError
            from harmonize.song import Grid
            n = 6_000  # bars of 4/4 (96k steps, under read_song's MAX_STEPS)
            grid = Grid(step_times=np.arange(16 * n + 1) * 0.125, bar_starts=list(range(0, 16 * n, 16)),
                        beat_starts=list(range(0, 16 * n, 4)), time_signatures=[(0, 4, 4)])
            try:
                read_chord_file(PATH, grid)
            except StripeError as e:
                print(e)
        """
        wall, rss, line = child(code.replace("PATH", repr(str(chords))))
        print(f"chord file 50 MB: refused                        {wall:6.2f} s  peak RSS {rss:6.0f} MB  ({line[-60:]})")
        lines, total = [], 0
        bar = 1
        while True:
            text = f"{bar}:{1 + bar % 4} Am7\n"
            if total + len(text) > 2 * 2**20 - 40:
                break
            lines.append(text)
            total += len(text)
            bar = bar % 6_000 + 1
        lines.sort(key=lambda s: (int(s.split(":")[0]), int(s.split(":")[1].split()[0])))  # never backwards
        lines.append("6001:1 C\n")
        chords.write_text("".join(lines))
        wall, rss, line = child(code.replace("PATH", repr(str(chords))))
        print(f"chord file {total / 2**20:.2f} MB, {len(lines)} lines: parsed  {wall:6.2f} s  peak RSS {rss:6.0f} MB  "
              f"({line[-60:]})")


if __name__ == "__main__":
    main()
