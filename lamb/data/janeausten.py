"""Jane Austen's six novels, a small offline stand-in for BERT's Wikipedia + BooksCorpus.

The paper pre-trains BERT on Wikipedia and BooksCorpus (3.3B words), which cannot be fetched
here. The text used instead comes from Debian's ``r-cran-janeaustenr`` package (janeaustenr
1.0.0, MIT licence, Project Gutenberg texts), which apt can fetch and unpack without R::

    apt-get download r-cran-janeaustenr          # r-cran-janeaustenr_1.0.0-1_all.deb, 1.6 MB
    dpkg-deb -x r-cran-janeaustenr_*.deb DIR     # -> DIR/usr/lib/R/site-library/janeaustenr

(:func:`fetch` runs exactly that.) The novels are R objects in the package's lazy-load
database ``data/Rdata.rdb``, indexed by ``data/Rdata.rdx``:

* ``Rdata.rdx`` is a gzip file holding one R-serialised (XDR) named list: ``variables`` maps
  each object name to its ``(offset, length)`` in the rdb, ``compressed`` says how blobs are
  compressed (TRUE: zlib).
* ``Rdata.rdb`` is the blobs back to back: each a 4-byte big-endian uncompressed length and
  a zlib stream holding one R-serialised object, here a character vector with one element per
  line of the printed book (empty strings between paragraphs).

:func:`read_rds` is a minimal R serialisation (format 2 and 3, XDR) reader for just what those
files need (character, integer, logical and double vectors, lists, pairlists, symbols and
their attributes); anything else fails with a clear error rather than guessing.

The objects are ``emma``, ``mansfieldpark``, ``northangerabbey``, ``persuasion``,
``prideprejudice`` and ``sensesensibility``: 73,422 lines and 717,537 whitespace-separated
words in all (``TOTALS``; 4,025,023 bytes of UTF-8 text, lines joined by newlines; 269
chapters). :func:`documents` turns them into
BERT pre-training input: one document per chapter, each a list of sentences. By default
"Sense & Sensibility" (alphabetically the last name) is held out for evaluation
(:func:`split_documents`).

Any other corpus in BERT's create_pretraining_data input format (plain-text files, one
sentence per line, a blank line between documents) is read by :func:`load_text_files`.
"""
from __future__ import annotations

import glob as globlib
import gzip
import os
import re
import struct
import zlib
from pathlib import Path

from lamb.data import debian
from lamb.data.errors import DatasetNotFoundError

PACKAGE = "r-cran-janeaustenr"
_PACKAGE_SUBDIR = ("usr", "lib", "R", "site-library", "janeaustenr")
INSTALLED_DIR = Path("/", *_PACKAGE_SUBDIR)
DEFAULT_CACHE_DIR = debian.CACHE_ROOT / "janeaustenr"

# R object name -> title (the order and titles of janeaustenr::austen_books()).
TITLES = {
    "sensesensibility": "Sense & Sensibility",
    "prideprejudice": "Pride & Prejudice",
    "mansfieldpark": "Mansfield Park",
    "emma": "Emma",
    "northangerabbey": "Northanger Abbey",
    "persuasion": "Persuasion",
}
HELD_OUT = "sensesensibility"
# (lines, whitespace-separated words) per novel in janeaustenr 1.0.0, checked by the tests.
TOTALS = {
    "sensesensibility": (12624, 118565),
    "prideprejudice": (13030, 121567),
    "mansfieldpark": (15349, 159540),
    "emma": (16235, 157441),
    "northangerabbey": (7856, 77141),
    "persuasion": (8328, 83283),
}

_HINT = (f"fetch it with `apt-get download {PACKAGE}` and `dpkg-deb -x {PACKAGE}_*.deb DIR` "
         "(or lamb.data.janeausten.fetch(DIR)) and pass --config.data.text_dir=DIR; the paper "
         "scale reads any .txt files instead (--config.data.text_glob)")


# ---------------------------------------------------------------------------------------------
# Finding and fetching the package


def _package_dir(data_dir) -> Path | None:
  """The janeaustenr package folder under `data_dir` (or the defaults), if it has the data."""
  if data_dir is None:
    candidates = [INSTALLED_DIR, DEFAULT_CACHE_DIR.joinpath(*_PACKAGE_SUBDIR)]
  else:
    data_dir = Path(data_dir)
    candidates = [data_dir.joinpath(*_PACKAGE_SUBDIR), data_dir, data_dir / "janeaustenr"]
  for path in candidates:
    if (path / "data" / "Rdata.rdb").is_file() and (path / "data" / "Rdata.rdx").is_file():
      return path
  return None


def fetch(cache_dir=None) -> Path:
  """Downloads and unpacks the Debian package into `cache_dir`; returns the package folder.

  Runs ``apt-get download r-cran-janeaustenr`` and ``dpkg-deb -x`` (no root needed, nothing
  installed; lamb.data.debian). Does nothing when the package is already there; raises
  DatasetNotFoundError when it cannot fetch, or when ``$LAMB_NO_FETCH`` is set.
  """
  cache_dir = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
  found = _package_dir(cache_dir)
  if found is not None:
    return found
  try:
    debian.fetch_package(PACKAGE, _PACKAGE_SUBDIR, cache_dir,
                         lambda folder: (folder / "data" / "Rdata.rdb").is_file())
  except debian.FetchError as e:
    raise DatasetNotFoundError(f"Jane Austen novels: {e}; {_HINT}.") from e
  return _package_dir(cache_dir)



# ---------------------------------------------------------------------------------------------
# Minimal R serialisation (XDR) reader


class RFormatError(ValueError):
  """An R serialised object this reader does not handle (or a corrupt file)."""


# SEXP types (R Internals, "Serialization Formats").
_NILSXP, _SYMSXP, _LISTSXP, _CHARSXP, _LGLSXP, _INTSXP = 0, 1, 2, 9, 10, 13
_REALSXP, _STRSXP, _VECSXP = 14, 16, 19
_REFSXP, _NILVALUE_SXP = 255, 254
_NA_INT = -2**31
# CHARSXP encoding flags (in the "levels" bits of the flags word).
_BYTES_MASK, _LATIN1_MASK, _UTF8_MASK, _ASCII_MASK = 1 << 1, 1 << 2, 1 << 3, 1 << 6


class _Reader:
  """Reads XDR-serialised R objects into Python values.

  Character vectors become lists of str (None for NA), integer/logical vectors lists of int /
  bool (None for NA), double vectors lists of float, lists and pairlists lists; a value with
  a ``names`` attribute becomes a dict. Other attributes are dropped.
  """

  def __init__(self, data: bytes):
    self.data, self.pos, self.refs = data, 0, []

  def _take(self, n: int) -> bytes:
    if self.pos + n > len(self.data):
      raise RFormatError("truncated R serialisation stream")
    out = self.data[self.pos:self.pos + n]
    self.pos += n
    return out

  def _int(self) -> int:
    return struct.unpack(">i", self._take(4))[0]

  def _length(self) -> int:
    n = self._int()
    if n == -1:  # Long vector: two more ints.
      hi, lo = self._int(), self._int()
      n = (hi << 32) + (lo & 0xFFFFFFFF)
    return n

  def header(self) -> None:
    fmt = self._take(2)
    if fmt != b"X\n":
      raise RFormatError(f"not an XDR R serialisation (format {fmt!r}; only 'X\\n' is read)")
    version = self._int()
    self._int(), self._int()  # R version that wrote it, minimal R version to read it.
    if version == 3:
      self._take(self._int())  # Native encoding name.
    elif version != 2:
      raise RFormatError(f"unsupported R serialisation version {version}")

  def item(self):
    flags = self._int()
    kind, levels = flags & 0xFF, flags >> 12
    has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))
    if kind == _NILVALUE_SXP:
      return None
    if kind == _REFSXP:
      index = flags >> 8 or self._int()
      return self.refs[index - 1]
    if kind == _SYMSXP:
      name = self.item()
      self.refs.append(name)
      return name
    if kind == _CHARSXP:
      return self._charsxp(levels)
    if kind == _LISTSXP:
      return self._pairlist(has_attr, has_tag)
    if kind in (_STRSXP, _VECSXP, _INTSXP, _LGLSXP, _REALSXP):
      n = self._length()
      if kind == _STRSXP or kind == _VECSXP:
        value = [self.item() for _ in range(n)]
      elif kind == _REALSXP:
        value = list(struct.unpack(f">{n}d", self._take(8 * n)))
      else:
        value = [None if v == _NA_INT else (bool(v) if kind == _LGLSXP else v)
                 for v in struct.unpack(f">{n}i", self._take(4 * n))]
      return self._with_attributes(value, self.item() if has_attr else None)
    raise RFormatError(f"R object of SEXP type {kind} is not handled by this minimal reader "
                       "(character, integer, logical, double vectors, lists and pairlists only)")

  def _charsxp(self, levels: int):
    n = self._int()
    if n == -1:
      return None  # NA_STRING
    raw = self._take(n)
    if levels & _UTF8_MASK or levels & _ASCII_MASK:
      return raw.decode("utf-8")
    if levels & _LATIN1_MASK:
      return raw.decode("latin-1")
    # Native or "bytes" encoding: the package declares UTF-8; keep undecodable bytes visible.
    return raw.decode("utf-8", errors="backslashreplace")

  def _pairlist(self, has_attr: bool, has_tag: bool):
    items = []
    while True:
      if has_attr:
        self.item()  # Attributes of a pairlist cell: dropped.
      tag = self.item() if has_tag else None
      items.append((tag, self.item()))
      flags = self._int()
      if flags & 0xFF == _NILVALUE_SXP:
        break
      if flags & 0xFF != _LISTSXP:  # A dotted pair: the CDR is a plain object.
        raise RFormatError("dotted pairlists are not handled by this minimal reader")
      has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))
    if all(tag is not None for tag, _ in items):
      return dict(items)
    return [value for _, value in items]

  @staticmethod
  def _with_attributes(value, attributes):
    names = attributes.get("names") if isinstance(attributes, dict) else None
    if names is not None:
      if len(names) != len(value):
        raise RFormatError(f"names attribute of length {len(names)} on a vector of "
                           f"length {len(value)}")
      return dict(zip(names, value))
    return value


def read_rds(data: bytes):
  """One R-serialised (XDR) object from `data` (the bytes after any compression)."""
  reader = _Reader(data)
  reader.header()
  return reader.item()


def read_lazyload_db(package_data_dir) -> dict:
  """All objects of an R lazy-load database (``Rdata.rdx`` + ``Rdata.rdb``) as {name: value}."""
  data_dir = Path(package_data_dir)
  index = read_rds(gzip.decompress((data_dir / "Rdata.rdx").read_bytes()))
  if not isinstance(index, dict) or "variables" not in index:
    raise RFormatError(f"{data_dir / 'Rdata.rdx'}: not a lazy-load index (no 'variables')")
  compressed = index.get("compressed", [True])
  compressed = compressed[0] if isinstance(compressed, list) and compressed else compressed
  blob = (data_dir / "Rdata.rdb").read_bytes()
  return {name: read_rds(_decompress(blob[offset:offset + length], compressed))
          for name, (offset, length) in index["variables"].items()}


def _decompress(chunk: bytes, compressed) -> bytes:
  """One lazy-load blob: 4-byte big-endian uncompressed length, then the compressed stream."""
  size = struct.unpack(">I", chunk[:4])[0]
  if compressed is True or compressed == 1:
    out = zlib.decompress(chunk[4:])
  elif compressed in (2, 3):  # R's bzip2 / xz: a type byte follows the length.
    import bz2, lzma  # pylint: disable=import-outside-toplevel,multiple-imports
    kind, body = chunk[4:5], chunk[5:]
    out = {b"2": bz2.decompress, b"X": lzma.decompress, b"Z": zlib.decompress,
           b"0": bytes}.get(kind, lambda _: None)(body)
    if out is None:
      raise RFormatError(f"unknown lazy-load blob compression type {kind!r}")
  else:
    raise RFormatError(f"unsupported lazy-load compression {compressed!r}")
  if len(out) != size:
    raise RFormatError(f"lazy-load blob decompressed to {len(out)} bytes, header says {size}")
  return out


# ---------------------------------------------------------------------------------------------
# The novels


def load_novels(data_dir=None, *, download: bool = False) -> dict[str, list[str]]:
  """{R object name: lines} for the six novels (see TITLES), in TITLES order.

  `data_dir` is a folder the package was unpacked into by :func:`fetch` (or the package folder
  itself); by default the installed R package and then DEFAULT_CACHE_DIR are tried. With
  `download` a missing package is fetched into `data_dir` (or DEFAULT_CACHE_DIR) first.
  Raises DatasetNotFoundError when it is not available.
  """
  package = _package_dir(data_dir)
  if package is None and download:
    package = fetch(data_dir)
  if package is None:
    where = data_dir if data_dir is not None else f"{INSTALLED_DIR} or {DEFAULT_CACHE_DIR}"
    raise DatasetNotFoundError(f"Jane Austen novels ({PACKAGE}) not found in {where}; {_HINT}.")
  objects = read_lazyload_db(package / "data")
  missing = sorted(set(TITLES) - set(objects))
  if missing:
    raise RFormatError(f"{package}: no R objects {missing} in data/Rdata.rdb")
  novels = {}
  for name in TITLES:
    lines = objects[name]
    if not isinstance(lines, list) or not all(l is None or isinstance(l, str) for l in lines):
      raise RFormatError(f"{package}: R object {name!r} is not a character vector")
    novels[name] = ["" if l is None else l for l in lines]
  return novels


_CHAPTER = re.compile(r"^\s*(CHAPTER|Chapter)\b")
_VOLUME = re.compile(r"^\s*(VOLUME|Volume)\b")
_END = re.compile(r"^\s*(THE END|FINIS|A NOTE ON THE TEXT)\s*$", re.IGNORECASE)
# A sentence ends at . ! or ? (then closing quotes/brackets), before white space; not after a
# title abbreviation such as "Mr." or an initial.
_SENTENCE_END = re.compile(r"""(?<=[.!?])["'\u2019\u201d)\]_]*\s+""")
_ABBREVIATION = re.compile(r"(?:\b(?:Mr|Mrs|Messrs|Dr|St|Col|Capt|Esq|Sir|Rev|Vol|viz|i\.e|e\.g|"
                           r"etc|No)|\b[A-Z])\.$")


def split_sentences(paragraph: str) -> list[str]:
  """A paragraph's sentences, by a simple rule (. ! ? then white space, not after "Mr." etc.)."""
  text = " ".join(paragraph.split())
  sentences, start = [], 0
  for m in _SENTENCE_END.finditer(text):
    end = m.start()
    if _ABBREVIATION.search(text[start:end].rstrip("\"'\u2019\u201d)]_")):
      continue
    sentences.append(text[start:m.end()].strip())
    start = m.end()
  if start < len(text):
    sentences.append(text[start:].strip())
  return [s for s in sentences if s]


def chapters(lines: list[str]) -> list[list[str]]:
  """A novel's chapters, each a list of paragraphs (lines joined; headings dropped).

  A chapter starts at a line beginning with "CHAPTER"/"Chapter"; the title page before the
  first chapter and "VOLUME" headings are dropped, and the text stops at "THE END"/"FINIS" (or
  Northanger Abbey's editorial "A NOTE ON THE TEXT").
  """
  result, paragraphs, current, started = [], None, [], False

  def end_paragraph():
    if current and paragraphs is not None:
      paragraphs.append(" ".join(" ".join(current).split()))
    current.clear()

  for line in lines:
    if _CHAPTER.match(line):
      end_paragraph()
      paragraphs, started = [], True
      result.append(paragraphs)
    elif _END.match(line):
      break
    elif not line.strip() or _VOLUME.match(line):
      end_paragraph()
    elif started:
      current.append(line)
  end_paragraph()
  return [c for c in result if c]


def documents(novels: dict[str, list[str]] | None = None, *, titles=None,
              data_dir=None) -> list[list[str]]:
  """Pre-training documents: one per chapter, each a list of sentences, novels in order.

  `novels` defaults to :func:`load_novels(data_dir) <load_novels>`; `titles` selects R object
  names (default all six, in TITLES order).
  """
  if novels is None:
    novels = load_novels(data_dir)
  titles = list(novels) if titles is None else list(titles)
  unknown = [t for t in titles if t not in novels]
  if unknown:
    raise ValueError(f"unknown novels {unknown}; known: {list(novels)}")
  docs = []
  for title in titles:
    for chapter in chapters(novels[title]):
      doc = [s for paragraph in chapter for s in split_sentences(paragraph)]
      if doc:
        docs.append(doc)
  return docs


def split_documents(novels: dict[str, list[str]] | None = None, *, held_out=(HELD_OUT,),
                    data_dir=None) -> tuple[list[list[str]], list[list[str]]]:
  """(train documents, evaluation documents): the `held_out` novels (names) are evaluation."""
  if novels is None:
    novels = load_novels(data_dir)
  held_out = (held_out,) if isinstance(held_out, str) else tuple(held_out)
  unknown = [t for t in held_out if t not in novels]
  if unknown:
    raise ValueError(f"unknown held-out novels {unknown}; known: {list(novels)}")
  train = documents(novels, titles=[t for t in novels if t not in held_out])
  return train, documents(novels, titles=list(held_out))


def word_count(lines) -> int:
  return sum(len(line.split()) for line in lines)


# ---------------------------------------------------------------------------------------------
# Any text corpus in BERT's input format


def load_text_files(text_glob) -> list[list[str]]:
  """Documents from .txt files in BERT's create_pretraining_data input format.

  `text_glob` is a glob pattern (``data/*.txt``, ``**`` allowed) or a directory (all ``*.txt``
  under it, recursively). Files are read in sorted path order as UTF-8; each non-blank line is
  a sentence (white space collapsed) and a blank line, or the end of a file, ends a document.
  Raises DatasetNotFoundError when nothing matches.
  """
  docs = []
  for path in text_files(text_glob):
    docs += read_text_file(path)
  return docs


def text_files(text_glob) -> list[str]:
  """The files `text_glob` names (a glob pattern, ``**`` allowed, or a directory: every
  ``*.txt`` under it), in sorted path order; DatasetNotFoundError when nothing matches."""
  pattern = os.fspath(text_glob)
  if os.path.isdir(pattern):
    pattern = os.path.join(pattern, "**", "*.txt")
  paths = sorted(p for p in globlib.glob(pattern, recursive=True) if os.path.isfile(p))
  if not paths:
    raise DatasetNotFoundError(f"no text files match {os.fspath(text_glob)!r}; provide a "
                               "directory or glob of .txt files (one sentence per line, blank "
                               "line between documents).")
  return paths


def read_text_file(path) -> list[list[str]]:
  """The documents of one file in BERT's input format."""
  docs, current = [], []
  with open(path, encoding="utf-8") as f:
    for line in f:
      line = " ".join(line.split())
      if line:
        current.append(line)
      elif current:
        docs.append(current)
        current = []
  if current:
    docs.append(current)
  return docs


def write_text_file(docs: list[list[str]], path) -> None:
  """Writes documents in that input format (atomically: a temporary file, then os.replace)."""
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
  with open(tmp, "w", encoding="utf-8") as f:
    f.write("\n\n".join("\n".join(doc) for doc in docs) + "\n")
  os.replace(tmp, path)
