"""Training and evaluation data: songs from a corpus, then windows as tensors.

- ``pop909``: a POP909 song folder -> ``Song`` (beats, chords, key), the cache and the split
  (``pop909_split.json``, shipped with the package);
- ``pop909_cl``: POP909-CL's corrected chord labels;
- ``folder_data``: a plain folder of MIDI files (``stripe train --data FOLDER``);
- ``datacheck``: ``stripe data check`` / ``stripe train --dry-run``, what the loader will read;
- ``dataset``: training windows over encoded songs, as torch tensors.

Nothing is imported here (``dataset`` imports torch): import the module you need.
"""
