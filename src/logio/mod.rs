//! Log files: rotation, output pumps, reading with offsets.
