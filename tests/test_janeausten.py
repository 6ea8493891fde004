"""Jane Austen's novels from Debian's r-cran-janeaustenr: the R lazy-load reader, line and word
counts, chapters, sentences, the held-out split, and plain-text corpora.

The real-data tests fetch the package once into lamb.data.janeausten.DEFAULT_CACHE_DIR (1.6 MB
with apt-get download; reused afterwards) and skip, saying why, only when it cannot be fetched.
"""
from __future__ import annotations

import gzip
import shutil
import struct
import subprocess
import zlib

import pytest

from lamb.data import janeausten as ja
from lamb.data.errors import DatasetNotFoundError

EMMA_FIRST_SENTENCE = (
    "Emma Woodhouse, handsome, clever, and rich, with a comfortable home and happy "
    "disposition, seemed to unite some of the best blessings of existence; and had lived nearly "
    "twenty-one years in the world with very little to distress or vex her.")
CHAPTERS = {"sensesensibility": 50, "prideprejudice": 61, "mansfieldpark": 48, "emma": 55,
            "northangerabbey": 31, "persuasion": 24}


@pytest.fixture(scope="module")
def novels():
  try:
    return ja.load_novels()
  except DatasetNotFoundError:
    pass
  try:
    ja.fetch(ja.DEFAULT_CACHE_DIR)
  except (DatasetNotFoundError, OSError) as e:
    pytest.skip(f"cannot fetch {ja.PACKAGE} with apt-get into {ja.DEFAULT_CACHE_DIR}: {e}")
  return ja.load_novels()


def test_counts_and_first_lines(novels):
  assert list(novels) == list(ja.TITLES)
  for name, (lines, words) in ja.TOTALS.items():
    assert (len(novels[name]), ja.word_count(novels[name])) == (lines, words), name
  all_lines = [line for lines in novels.values() for line in lines]
  assert len(all_lines) == 73_422
  assert ja.word_count(all_lines) == 717_537  # ~718k words
  assert sum(len("\n".join(v).encode("utf-8")) for v in novels.values()) == 4_025_023  # ~4 MB
  assert novels["emma"][:3] == ["EMMA", "", "By Jane Austen"]
  assert novels["prideprejudice"][0] == "PRIDE AND PREJUDICE"
  assert all(isinstance(line, str) for line in all_lines)


def test_chapters_sentences_and_split(novels):
  assert {name: len(ja.chapters(lines)) for name, lines in novels.items()} == CHAPTERS
  emma = ja.documents(novels, titles=["emma"])
  assert len(emma) == 55 and emma[0][0] == EMMA_FIRST_SENTENCE
  assert emma[-1][-1].endswith("the perfect happiness of the union.")
  pride = ja.documents(novels, titles=["prideprejudice"])
  assert pride[0][0] == ("It is a truth universally acknowledged, that a single man in "
                         "possession of a good fortune, must be in want of a wife.")
  docs = ja.documents(novels)
  assert len(docs) == sum(CHAPTERS.values()) == 269
  assert not any("CHAPTER" in s or s.startswith("Chapter ") for d in docs for s in d[:1])
  # Northanger Abbey's editorial note after the last chapter is not part of the text.
  assert not any("Signet Classic" in s for d in docs for s in d)
  sentences = sum(len(d) for d in docs)
  assert 30_000 < sentences < 36_000
  train, held_out = ja.split_documents(novels)
  assert len(held_out) == 50 and held_out[0][0].startswith("The family of Dashwood")
  assert len(train) == 219 and train[0][0] == pride[0][0]
  train2, held_out2 = ja.split_documents(novels, held_out=("persuasion", "emma"))
  assert len(held_out2) == 24 + 55 and len(train2) == 269 - 79
  with pytest.raises(ValueError, match="unknown"):
    ja.split_documents(novels, held_out="lady susan")


def test_fetch_is_idempotent_and_explains_missing_apt(novels, tmp_path, monkeypatch):
  del novels  # (the package is in the default cache or installed now)
  package = ja._package_dir(None)  # pylint: disable=protected-access
  root = package.parents[len(ja._PACKAGE_SUBDIR) - 1]  # pylint: disable=protected-access

  def no_subprocess(*args, **kwargs):
    raise AssertionError("fetch ran a command although the package is there")

  monkeypatch.setattr(subprocess, "run", no_subprocess)
  assert ja.fetch(root) == package
  monkeypatch.undo()
  monkeypatch.setattr(shutil, "which", lambda tool: None)
  with pytest.raises(DatasetNotFoundError, match="apt-get.*not available.*txt files") as e:
    ja.fetch(tmp_path / "empty")
  assert "\n" not in str(e.value)
  with pytest.raises(DatasetNotFoundError, match="not found in .*fetch.*txt files"):
    ja.load_novels(tmp_path / "empty")


# ---------------------------------------------------------------------------------------------
# The R serialisation reader, on hand-made streams


def _i(*values):
  return b"".join(struct.pack(">i", v) for v in values)


def _charsxp(text, flags=0x00040009):  # ASCII-flagged CHARSXP by default
  if text is None:
    return _i(0x00000009, -1)
  raw = text.encode("latin-1" if flags == 0x00004009 else "utf-8")
  return _i(flags, len(raw)) + raw


def _header(version=3):
  return b"X\n" + _i(version, 0x040201, 0x030500) + (_i(5) + b"UTF-8" if version == 3 else b"")


def test_read_rds_vectors_lists_and_encodings():
  strings = (_i(16, 4) + _charsxp("EMMA") + _charsxp(None) + _charsxp("caf\u00e9", 0x00008009)
             + _charsxp("na\u00efve", 0x00004009))
  assert ja.read_rds(_header() + strings) == ["EMMA", None, "caf\u00e9", "na\u00efve"]
  assert ja.read_rds(_header(2) + _i(13, 3, 1, -2**31, 7)) == [1, None, 7]
  assert ja.read_rds(_header() + _i(10, 2, 1, 0)) == [True, False]
  assert ja.read_rds(_header() + _i(14, 1) + struct.pack(">d", 2.5)) == [2.5]
  # list(a = 1L, b = "x"): a VECSXP with a names attribute (a tagged pairlist whose tag is a
  # symbol), which becomes a dict.
  names = _i(0x402) + _i(1) + _charsxp("names") + _i(16, 2) + _charsxp("a") + _charsxp("b") \
      + _i(254)
  value = _header() + _i(0x213, 2) + _i(13, 1, 1) + _i(16, 1) + _charsxp("x") + names
  assert ja.read_rds(value) == {"a": [1], "b": ["x"]}
  # A second use of a symbol is a back-reference (REFSXP, index in the flags).
  pairlist = (_i(0x402) + _i(1) + _charsxp("k") + _i(13, 1, 5)
              + _i(0x402) + _i((1 << 8) | 255) + _i(13, 1, 6) + _i(254))
  assert ja.read_rds(_header() + pairlist) == {"k": [6]}
  with pytest.raises(ja.RFormatError, match="SEXP type 3"):
    ja.read_rds(_header() + _i(3))
  with pytest.raises(ja.RFormatError, match="XDR"):
    ja.read_rds(b"A\n" + _i(3, 0, 0))
  with pytest.raises(ja.RFormatError, match="truncated"):
    ja.read_rds(_header() + _i(16, 2) + _charsxp("only one"))


def test_read_lazyload_db(tmp_path):
  """A two-object database written the way R's makeLazyLoadDB does (zlib blobs, gzip index)."""
  objects = {"first": _i(16, 2) + _charsxp("Line one") + _charsxp(""),
             "second": _i(16, 1) + _charsxp(None)}
  blob, offsets = b"", {}
  for name, body in objects.items():
    data = _header() + body
    chunk = struct.pack(">I", len(data)) + zlib.compress(data)
    offsets[name] = (len(blob), len(chunk))
    blob += chunk
  (tmp_path / "Rdata.rdb").write_bytes(blob)

  def names_attr(*names):
    return _i(0x402) + _i(1) + _charsxp("names") + _i(16, len(names)) + b"".join(
        _charsxp(n) for n in names) + _i(254)

  variables = _i(0x213, 2) + b"".join(_i(13, 2, *offsets[n]) for n in objects) + names_attr(
      *objects)
  index = (_header() + _i(0x213, 3) + variables + _i(19, 0) + _i(10, 1, 1)
           + names_attr("variables", "references", "compressed"))
  (tmp_path / "Rdata.rdx").write_bytes(gzip.compress(index))
  assert ja.read_lazyload_db(tmp_path) == {"first": ["Line one", ""], "second": [None]}


# ---------------------------------------------------------------------------------------------
# Sentences and plain-text corpora


def test_split_sentences():
  text = ('"Mr. Knightley came."  She left!\nDid he? Yes... "No," said Mrs. Weston. St. Ives is '
          'in Cornwall; so is Vol. II.')
  assert ja.split_sentences(text) == [
      '"Mr. Knightley came."', "She left!", "Did he?", "Yes...", '"No," said Mrs. Weston.',
      "St. Ives is in Cornwall; so is Vol. II."]
  assert ja.split_sentences("  ") == []


def test_chapters_of_a_small_book():
  lines = ["TITLE", "", "By Someone", "", "VOLUME I", "", "CHAPTER I", "", "First line of",
           "a paragraph.  Second", "sentence.", "", "Another paragraph.", "", "Chapter 2", "",
           "Short.", "", "THE END", "", "Afterword."]
  assert ja.chapters(lines) == [["First line of a paragraph. Second sentence.",
                                 "Another paragraph."], ["Short."]]
  assert ja.documents({"book": lines}) == [
      ["First line of a paragraph.", "Second sentence.", "Another paragraph."], ["Short."]]


def test_load_text_files(tmp_path):
  (tmp_path / "b.txt").write_text("Doc two line one.\nDoc two line two.\n")
  (tmp_path / "a.txt").write_text("First doc.\n  Its  second  sentence.\n\n\n"
                                  "Second doc.\n\nThird doc.")
  (tmp_path / "sub").mkdir()
  (tmp_path / "sub" / "c.txt").write_text("\nNested.\n")
  (tmp_path / "notes.md").write_text("not text\n")
  expected = [["First doc.", "Its second sentence."], ["Second doc."], ["Third doc."],
              ["Doc two line one.", "Doc two line two."], ["Nested."]]
  assert ja.load_text_files(tmp_path) == expected
  assert ja.load_text_files(str(tmp_path / "*.txt")) == expected[:4]
  out = tmp_path / "out" / "corpus.txt"
  ja.write_text_file(expected, out)
  assert ja.load_text_files(out) == expected
  with pytest.raises(DatasetNotFoundError, match="no text files match"):
    ja.load_text_files(tmp_path / "nothing" / "*.txt")
