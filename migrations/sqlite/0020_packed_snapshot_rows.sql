-- A chunk of a snapshot's rows written from now on is an LZ4 block (the uncompressed length
-- first, little-endian u32) of the text `rows` held before (`key TAB json NEWLINE` per worker),
-- and `rows` is empty: the rows of a million workers are 450 MB as text, about a fifth packed.
-- Chunks written before stay text and are read as they are.
ALTER TABLE snapshot_rows ADD COLUMN packed BLOB;
