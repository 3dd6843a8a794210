"""stripe: structure-informed linear-attention melody harmonization (import package ``harmonize``).

The package follows the data, MIDI -> song -> structure labels -> tensors -> model -> decoding -> MIDI:

- ``io/``         the file formats at the edges: MIDI in and out, chord files, lead sheets, safe writes
- ``song``, ``chords``, ``qualities``, ``spelling``: the in-memory song and its chord vocabulary
- ``beats``, ``pickup``, ``filechords``: what the file does not say outright (beats, upbeat, its own chords)
- ``structure``, ``beat_tokens``: structure labels (TIME, REP, KEY, BIN) and the per-beat view
- ``encode``      song -> per-step arrays (piano rolls, chord labels, metre)
- ``data/``       training data: POP909, POP909-CL, a folder of MIDI files, windows as tensors
- ``model/``      the structure-informed linear-attention transformer and its checkpoints; ``hub``: weights
- ``decode``, ``binarize``, ``baseline``: model outputs -> chords and notes (and a non-neural baseline)
- ``pipeline``, ``batch``: the harmonizer as a library, one file or many
- ``train``, ``distributed``, ``resume``: training; ``evaluate``, ``end_to_end``, ``metrics``,
  ``mutual_info``: evaluation
- ``cli``, ``commands``, ``labelplot``, ``progress``, ``errors``: the ``stripe`` command line
"""

__version__ = "0.1.0"
