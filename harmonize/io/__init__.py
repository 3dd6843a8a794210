"""The file formats at the edges: what the user hands in and what the CLI writes.

- ``midi``: a MIDI file -> ``Song``, and the harmonized tracks appended to the original file;
- ``tempo_map``: the tempo map written when the beats were inferred, and the file re-timed onto it;
- ``chordfile``: a user's chord file (``--chords``);
- ``leadsheet``: the MusicXML lead sheet (``--musicxml``);
- ``songfile``: a ``Song`` as a pickle-free ``.npz`` (the preprocessing cache);
- ``outputs`` and ``atomic``: every file written goes through them (no overwrite without ``--force``,
  all outputs or none, never half a file).

Nothing is imported here: each module is imported where it is used, so ``stripe --help`` stays fast.
"""
