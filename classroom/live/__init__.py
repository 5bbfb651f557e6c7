"""The live class shell: the clock, one actor task per class, and their registry."""
