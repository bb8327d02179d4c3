#!/usr/bin/env python3
"""Hostile and careless inputs against a release build of `backprop`, measured: the catalogue of issue #14's classes.

How to run it, from the repository's folder (Python 3 standard library only; about a minute):

    swift build -c release
    python3 Scripts/hostile_inputs.py                   # every case
    python3 Scripts/hostile_inputs.py --class memory    # the cases of one class (repeatable)
    python3 Scripts/hostile_inputs.py --verbose         # and each case's standard error

It needs Fashion-MNIST in /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist; --fashion DIR for
another copy). It is a measurement, not a CI step: the Swift suites (HostileInputTests, MessageTests, FuzzAndSweepFindingsTests,
CommandTests, ReliabilityTests) test each class in `swift test`; this runs the whole catalogue against the release
binary and measures what those cannot, on the real data set.

One line of output per case, grouped by class: the classes of issue #14 (crash, data loss, hang, memory, wrong results,
unclear messages) and those found later (tables, text, recurrent, output paths, stdout failures). For every case it
records and checks:

- the exit status: 1, or 64 for a usage error, never a signal;
- standard error: exactly one line, "backprop: error: ...", holding what the case says it must name;
- the wall time: under 10 s;
- the peak resident memory of the child (os.wait4's ru_maxrss): at most twice the decompressed size of the data set
  the case uses. The data cases use the real Fashion-MNIST (55 MB decompressed), copied into a temporary folder: each
  case's data folder links to that copy, with the files it damages written in their place. A case whose data is smaller than the process itself (a flag error, a small table or text) is held to
  twice the peak of an idle `backprop --help` instead (the Swift runtime and OpenBLAS alone, about 25 MB); the bound
  and where it comes from are printed per case. (Cases are started by a small helper process, because Linux keeps a
  process's peak across exec and a child forked from this one would start with the data set resident.)
- the disk: the case's folder is snapshotted before and after (every file's type, size and SHA-256, each symbolic
  link's target): previous outputs and checkpoints must be byte-identical, nothing added (no temporary file left
  behind), nothing removed; the pristine copy of Fashion-MNIST is checked at the end too.

Prints a table of cases and passes per class, the largest wall time and the largest peak memory against its bound,
and exits with status 1 if any case fails.
"""

import argparse
import gzip
import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

CLASSES = ["crash", "data loss", "hang", "memory", "wrong results", "unclear messages",
           "tables", "text", "recurrent", "output paths", "stdout failures"]
FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
TIME_LIMIT = 10.0


@dataclass
class Case:
    cls: str
    name: str
    args: list                      # arguments after the binary; "{key}" is replaced by what setup returns
    status: int = 1                 # 1, or 64 for a usage error
    expect: list = field(default_factory=list)  # what standard error must contain
    setup: object = None            # setup(folder) -> {key: value}, makes the case's files in its folder
    data: int = 0                   # the decompressed bytes of the data set the case uses
    stdout: str = "file"            # "file", "/dev/full" or "closed-pipe"
    check: object = None            # check(folder) -> reason or None, run after the case (e.g. /dev/null still a device)


# ---------------------------------------------------------------------------------------------------------------
# Fixtures: the pristine data set, its decompressed bytes, and models trained once.

class Fixtures:
    def __init__(self, root, binary, fashion):
        self.root, self.binary = root, binary
        self.pristine = os.path.join(root, "fashion")
        os.makedirs(self.pristine)
        for name in FILES:
            shutil.copyfile(os.path.join(fashion, name + ".gz"), os.path.join(self.pristine, name + ".gz"))
        self.raw = {}
        for name in FILES:
            with gzip.open(os.path.join(self.pristine, name + ".gz"), "rb") as f:
                self.raw[name] = f.read()
        self.fashion_bytes = sum(len(b) for b in self.raw.values())
        # A small subset (600 training, 100 test images) for the models that only need to exist.
        self.small = os.path.join(root, "small")
        os.makedirs(self.small)
        for name, n in zip(FILES, [600, 600, 100, 100]):
            self.write_idx(os.path.join(self.small, name + ".gz"), self.subset(name, n))
        self.models = os.path.join(root, "models")
        os.makedirs(self.models)
        self.corpus = os.path.join(root, "corpus.txt")
        words = "the cat sat on a mat and the dog ran to the big red house while it rained all day".split()
        text = "".join(words[(i * 7 + i // 5) % len(words)] + ("\n" if i % 11 == 10 else " ") for i in range(12000))
        with open(self.corpus, "w") as f:
            f.write(text)
        self.tables = os.path.join(root, "tables")
        os.makedirs(self.tables)
        here = os.path.dirname(os.path.abspath(__file__))
        for name in ["fruit.csv", "houses.csv"]:
            shutil.copyfile(os.path.join(here, "..", "Examples", "Tables", name), os.path.join(self.tables, name))
        small, m = self.small, self.models
        q = ["--quiet", "--threads", "1"]
        self.train(["train", "--data", small, "--layers", "784-32-10", "--epochs", "1", "--output", f"{m}/mlp.safetensors"] + q)
        self.train(["train", "--data", small, "--layers", "784-16-10", "--optimizer", "adam", "--epochs", "1",
                    "--checkpoint-every", "1", "--checkpoint", f"{m}/adam.ckpt"] + q)
        self.train(["train", "--data", small, "--layers", "784-10", "--model", "lstm", "--hidden", "8", "--epochs", "1",
                    "--checkpoint-every", "1", "--checkpoint", f"{m}/lstm.ckpt", "--output", f"{m}/lstm.safetensors"] + q)
        self.train(["train", "--data", small, "--layers", "784-10", "--model", "cnn", "--epochs", "1", "--output", f"{m}/cnn.safetensors"] + q)
        self.train(["train", "--data", self.three_class_folder(), "--layers", "784-3", "--epochs", "1",
                    "--output", f"{m}/three.safetensors"] + q)
        self.train(["text", "train", "--text", self.corpus, "--hidden", "16", "--sequence-length", "20", "--batch-size", "16",
                    "--output", f"{m}/text.safetensors"] + q)
        self.train(["train", "--data", f"{self.tables}/fruit.csv", "--layers", "auto-8-auto", "--epochs", "2",
                    "--output", f"{m}/fruit.safetensors"] + q)
        self.train(["train", "--data", f"{self.tables}/fruit.csv", "--layers", "auto-8-auto", "--epochs", "1",
                    "--checkpoint-every", "1", "--checkpoint", f"{m}/fruit.ckpt"] + q)
        self.train(["train", "--data", f"{self.tables}/houses.csv", "--target", "price_k", "--layers", "auto-8-auto",
                    "--epochs", "2", "--output", f"{m}/houses.safetensors"] + q)
        self.train(["rl", "train", "--episodes", "3", "--hidden", "8", "--output", f"{m}/policy.safetensors", "--quiet"])

    def train(self, arguments):
        result = subprocess.run([self.binary] + arguments, cwd=self.root, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"could not make a fixture ({' '.join(arguments)}): {result.stderr.strip()}")

    def three_class_folder(self):
        folder = os.path.join(self.root, "three")
        os.makedirs(folder)
        images, labels = self.raw[FILES[0]], self.raw[FILES[1]]
        keep = [i for i in range(2000) if labels[8 + i] < 3][:300]
        pixels = b"".join(images[16 + i * 784:16 + (i + 1) * 784] for i in keep)
        for prefix in ["train", "t10k"]:
            self.write_idx(f"{folder}/{prefix}-images-idx3-ubyte.gz", idx([len(keep), 28, 28], pixels))
            self.write_idx(f"{folder}/{prefix}-labels-idx1-ubyte.gz", idx([len(keep)], bytes(labels[8 + i] for i in keep)))
        return folder

    def subset(self, name, n):
        data = self.raw[name]
        if "images" in name:
            return idx([n, 28, 28], data[16:16 + n * 784])
        return idx([n], data[8:8 + n])

    @staticmethod
    def write_idx(path, data):
        with open(path, "wb") as f:
            f.write(gzip.compress(data, compresslevel=1))


def idx(dimensions, payload):
    return struct.pack(">BBBB", 0, 0, 8, len(dimensions)) + b"".join(struct.pack(">I", d) for d in dimensions) + bytes(payload)


def header(dimensions):
    return idx(dimensions, b"")


# ---------------------------------------------------------------------------------------------------------------
# Helpers that build a case's files.

FX = None  # the Fixtures, once made


def fashion(folder, replace=None, remove=(), copies=(), name="data"):
    """A copy of Fashion-MNIST in folder/name: links to the pristine copy, except the files in `replace`
    ({file: bytes}; a name ending in .gz is written as it is, else as a raw file with the .gz link left out), those
    in `copies` (copied, not linked) and those in `remove`."""
    d = os.path.join(folder, name)
    os.makedirs(d, exist_ok=True)
    replace = replace or {}
    for base in FILES:
        if base in remove or base + ".gz" in remove:
            continue
        if base + ".gz" in replace:
            with open(os.path.join(d, base + ".gz"), "wb") as f:
                f.write(replace[base + ".gz"])
        elif base in replace:
            with open(os.path.join(d, base), "wb") as f:
                f.write(replace[base])
        elif base in copies:
            shutil.copyfile(os.path.join(FX.pristine, base + ".gz"), os.path.join(d, base + ".gz"))
        else:
            os.symlink(os.path.join(FX.pristine, base + ".gz"), os.path.join(d, base + ".gz"))
    return d


def copy_model(folder, name, as_name=None):
    path = os.path.join(folder, as_name or name)
    shutil.copyfile(os.path.join(FX.models, name), path)
    return path


def write(folder, name, data):
    path = os.path.join(folder, name)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path


def read_safetensors(path):

    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def write_safetensors(path, head, data):

    h = json.dumps(head, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def edited_model(folder, source, name, metadata=None, tensor=None):
    """A copy of models/source with metadata keys replaced ({key: value or None to remove}) and the first float of
    tensor (name, value) set."""
    head, data = read_safetensors(os.path.join(FX.models, source))
    meta = head.setdefault("__metadata__", {})
    for key, value in (metadata or {}).items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    data = bytearray(data)
    if tensor:
        tname, value = tensor
        start = head[tname]["data_offsets"][0]
        data[start:start + 4] = struct.pack("<f", value)
    path = os.path.join(folder, name)
    write_safetensors(path, head, bytes(data))
    return path


def fifo(folder, name):
    path = os.path.join(folder, name)
    os.mkfifo(path)
    return path


def gzip_member(data):
    return gzip.compress(data, compresslevel=1)


def bomb(claim, total, chunk=64 << 20):
    """A gzip file whose IDX header claims `claim` dimensions and that inflates to `total` bytes: members of zeros
    repeated (one member of `chunk` zeros is about 64 KB)."""
    head = header(claim)
    zeros = gzip.compress(bytes(chunk), compresslevel=9)
    members = [gzip_member(head)] + [zeros] * (total // chunk)
    return b"".join(members)


def table(folder, name, text):
    return write(folder, name, text)


def still_device(path):
    def check(_folder):
        mode = os.lstat(path).st_mode
        return None if stat.S_ISCHR(mode) else f"{path} is no longer a character device"
    return check


# ---------------------------------------------------------------------------------------------------------------
# The catalogue.

def catalogue():
    F = FX.fashion_bytes  # every data case uses the whole Fashion-MNIST folder (evaluate reads its test half)
    train = lambda *a: ["train", "--data", "{F}", "--threads", "1"] + list(a)
    cases = []

    def add(cls, name, args, status=1, expect=(), setup=None, data=0, stdout="file", check=None):
        cases.append(Case(cls, name, list(args), status, list(expect), setup, data, stdout, check))

    def with_fashion(**kw):
        return lambda d: {"F": fashion(d, **kw)}

    def with_model(model, **kw):
        return lambda d: {"F": fashion(d, **kw), "M": copy_model(d, model)}

    raw = FX.raw
    TI, TL, EI, EL = FILES

    # --- crash -----------------------------------------------------------------------------------------------
    c = "crash"
    for command in (["predict", "--index", "0"], ["evaluate"]):
        for value, label in ((float("nan"), "nan"), (float("inf"), "inf")):
            add(c, f"{command[0]} a model with {label} weights", command + ["--model", "{M}", "--data", "{F}"],
                expect=["holds NaN or infinite values"], data=F,
                setup=lambda d, v=value: {"F": fashion(d), "M": edited_model(d, "mlp.safetensors", "m.safetensors", tensor=("0.weight", v))})
    add(c, "zero training images", train("--layers", "784-10", "--epochs", "1"), expect=["found none"], data=F,
        setup=with_fashion(replace={TI + ".gz": gzip_member(header([0, 28, 28])), TL + ".gz": gzip_member(header([0]))}))
    add(c, "zero test images", train("--layers", "784-10", "--epochs", "1"), expect=["found none"], data=F,
        setup=with_fashion(replace={EI + ".gz": gzip_member(header([0, 28, 28])), EL + ".gz": gzip_member(header([0]))}))
    add(c, "evaluate --threads 0", ["evaluate", "--model", "{M}", "--data", "{F}", "--threads", "0"], 64, ["--threads must be in 1...1024"],
        setup=with_model("mlp.safetensors"), data=F)
    add(c, "evaluate --threads -1", ["evaluate", "--model", "{M}", "--data", "{F}", "--threads", "-1"], 64, ["--threads must be in 1...1024"],
        setup=with_model("mlp.safetensors"), data=F)
    for side in (1, 2, 3):
        add(c, f"cnn on {side}x{side} images", ["train", "--data", "{F}", "--model", "cnn", "--layers", f"{side * side}-10", "--epochs", "1"],
            expect=["at least 4×4 pixels"], data=F,
            setup=with_fashion(replace={TI + ".gz": gzip_member(idx([60000, side, side], raw[TI][16:16 + 60000 * side * side])),
                                        EI + ".gz": gzip_member(idx([10000, side, side], raw[EI][16:16 + 10000 * side * side]))}))
    add(c, "--layers 784-100000000-10", train("--layers", "784-100000000-10"), expect=["needs about", "GB"], setup=with_fashion(), data=F)
    add(c, "--layers 784-9223372036854775807-10", train("--layers", "784-9223372036854775807-10"), expect=["too large to count"],
        setup=with_fashion(), data=F)
    add(c, "--layers 784-3000000-3000000-10", train("--layers", "784-3000000-3000000-10"), expect=["needs about"], setup=with_fashion(), data=F)
    add(c, "predict --index 9223372036854775807", ["predict", "--model", "{M}", "--data", "{F}", "--index", "9223372036854775807", "--count", "2"],
        expect=["outside the 10000 test images"], setup=with_model("mlp.safetensors"), data=F)
    add(c, "predict past the last image", ["predict", "--model", "{M}", "--data", "{F}", "--index", "9999", "--count", "2"],
        expect=["outside the 10000 test images"], setup=with_model("mlp.safetensors"), data=F)
    add(c, "resume optimizer steps Int.max", train("--layers", "784-16-10", "--optimizer", "adam", "--epochs", "2", "--resume", "{C}"),
        expect=["neither can be above 2^53"], data=F,
        setup=lambda d: {"F": fashion(d), "C": edited_model(d, "adam.ckpt", "c.ckpt", {"backprop.optimizer.steps": "9223372036854775807"})})
    add(c, "resume a table checkpoint, damaged standardization",
        ["train", "--data", "{T}", "--epochs", "2", "--resume", "{C}"], expect=["standardization is damaged"],
        setup=lambda d: {"T": copy_model_table(d, "fruit.csv"), "C": damaged_table_checkpoint(d)})
    add(c, "model claiming a 100000x100000 layer", ["evaluate", "--model", "{M}", "--data", "{F}"], expect=["m.safetensors"], data=F,
        setup=lambda d: {"F": fashion(d), "M": edited_model(d, "mlp.safetensors", "m.safetensors", {
            "backprop.layers": '[{"inputSize":784,"outputSize":100000,"type":"dense"},{"type":"relu"},{"inputSize":100000,"outputSize":100000,"type":"dense"}]'})})
    add(c, "model with input size 0", ["evaluate", "--model", "{M}", "--data", "{F}"], expect=["input size '0'"], data=F,
        setup=lambda d: {"F": fashion(d), "M": edited_model(d, "mlp.safetensors", "m.safetensors", {"backprop.input_size": "0"})})
    add(c, "text sample with an image model", ["text", "sample", "--model", "{M}"], expect=["not a text model"],
        setup=lambda d: {"M": copy_model(d, "mlp.safetensors")})
    add(c, "rl play with a table model", ["rl", "play", "--model", "{M}", "--episodes", "1"], expect=["maps 5 inputs"],
        setup=lambda d: {"M": copy_model(d, "houses.safetensors")})

    # --- data loss -------------------------------------------------------------------------------------------
    c = "data loss"
    quick = ("--layers", "784-10", "--epochs", "1")
    add(c, "--output /dev/null", train(*quick, "--output", "/dev/null"), expect=["not a regular file"], setup=with_fashion(), data=F,
        check=still_device("/dev/null"))
    add(c, "--output a FIFO", train(*quick, "--output", "{P}"), expect=["not a regular file"], data=F,
        setup=lambda d: {"F": fashion(d), "P": fifo(d, "model.safetensors")})
    add(c, "--output ''", train(*quick, "--output", ""), expect=["--output is empty"], setup=with_fashion(), data=F)
    add(c, "--output in a missing folder", train(*quick, "--output", "{D}/missing/m.safetensors"), expect=["the folder does not exist"],
        setup=with_fashion(), data=F)
    add(c, "--output a folder", train(*quick, "--output", "{D}"), expect=["not a regular file"], setup=with_fashion(), data=F)
    add(c, "--output in /proc (root passes access())", train(*quick, "--output", "/proc/m.safetensors"), expect=["cannot be made"],
        setup=with_fashion(), data=F)
    add(c, "--output a file in /proc", train(*quick, "--output", "/proc/self/comm"), expect=["cannot be made"], setup=with_fashion(), data=F)
    add(c, "--output = --checkpoint", train(*quick, "--output", "{D}/same", "--checkpoint-every", "1", "--checkpoint", "{D}/same"),
        expect=["name the same file"], setup=with_fashion(), data=F)
    add(c, "--output = --plot", train(*quick, "--output", "{D}/same", "--plot", "{D}/same"), expect=["name the same file"],
        setup=with_fashion(), data=F)
    add(c, "--output names the training images", train(*quick, "--output", "{F}/train-images-idx3-ubyte.gz"),
        expect=["is a data file (--data)"], setup=with_fashion(copies=(TI,)), data=F)
    add(c, "--plot names the test labels", train(*quick, "--plot", "{F}/t10k-labels-idx1-ubyte.gz"),
        expect=["is a data file (--data)"], setup=with_fashion(copies=(EL,)), data=F)
    add(c, "--output a link to a data file", train(*quick, "--output", "{F}/train-labels-idx1-ubyte.gz"),
        expect=["is a symbolic link"], setup=with_fashion(), data=F)
    add(c, "--output names the resumed checkpoint", train("--layers", "784-16-10", "--optimizer", "adam", "--epochs", "2", "--resume", "{C}", "--output", "{C}"),
        expect=["the checkpoint being resumed"], data=F, setup=lambda d: {"F": fashion(d), "C": copy_model(d, "adam.ckpt")})
    add(c, "a diverging run keeps the previous model", train("--layers", "784-10", "--batch-size", "0", "--learning-rate", "1e38",
                                                             "--epochs", "2", "--output", "{M}"),
        expect=["training diverged"], data=F, setup=lambda d: {"F": fashion(d), "M": copy_model(d, "mlp.safetensors", "m.safetensors")})
    add(c, "a diverging run keeps the previous checkpoint", train("--layers", "784-16-10", "--optimizer", "adam", "--batch-size", "0",
                                                                  "--learning-rate", "1e38", "--epochs", "2", "--checkpoint-every", "1",
                                                                  "--checkpoint", "{C}"),
        expect=["training diverged"], data=F, setup=lambda d: {"F": fashion(d), "C": copy_model(d, "adam.ckpt", "c.ckpt")})
    add(c, "text train --output names the corpus", ["text", "train", "--text", "{X}", "--output", "{X}"], expect=["a text file of the corpus"],
        setup=lambda d: {"X": copy_corpus(d)})
    add(c, "table --output names the table", ["train", "--data", "{T}", "--epochs", "1", "--output", "{T}"],
        expect=["the training table (--data)"], setup=lambda d: {"T": copy_model_table(d, "fruit.csv")})
    add(c, "table --plot names the validation table", ["train", "--data", "{T}", "--validation", "{V}", "--epochs", "1", "--plot", "{V}"],
        expect=["the validation table (--validation)"],
        setup=lambda d: {"T": copy_model_table(d, "fruit.csv"), "V": copy_model_table(d, "fruit.csv", "validation.csv")})
    add(c, "rl --output /dev/null", ["rl", "train", "--episodes", "2", "--output", "/dev/null"], expect=["not a regular file"],
        check=still_device("/dev/null"))
    add(c, "text train --output a FIFO", ["text", "train", "--text", "{X}", "--output", "{P}"], expect=["not a regular file"],
        setup=lambda d: {"X": copy_corpus(d), "P": fifo(d, "t.safetensors")})

    # --- hang ------------------------------------------------------------------------------------------------
    c = "hang"
    add(c, "checkpoint generator all zeros", train("--layers", "784-16-10", "--optimizer", "adam", "--epochs", "2", "--resume", "{C}"),
        expect=["not all zero"], data=F,
        setup=lambda d: {"F": fashion(d), "C": edited_model(d, "adam.ckpt", "c.ckpt", {"backprop.generator": "0,0,0,0"})})
    add(c, "checkpoint generator of three words", train("--layers", "784-16-10", "--optimizer", "adam", "--epochs", "2", "--resume", "{C}"),
        expect=["not four numbers"], data=F,
        setup=lambda d: {"F": fashion(d), "C": edited_model(d, "adam.ckpt", "c.ckpt", {"backprop.generator": "1,2,3"})})
    add(c, "training images a FIFO", train(*quick), expect=["not a regular file"], data=F,
        setup=lambda d: {"F": fashion_with(d, TI + ".gz", lambda p: os.mkfifo(p))})
    add(c, "test labels a FIFO (evaluate)", ["evaluate", "--model", "{M}", "--data", "{F}"], expect=["not a regular file"], data=F,
        setup=lambda d: {"F": fashion_with(d, EL + ".gz", lambda p: os.mkfifo(p)), "M": copy_model(d, "mlp.safetensors")})
    add(c, "training labels a symlink loop", train(*quick), expect=["train-labels-idx1-ubyte"], data=F,
        setup=lambda d: {"F": fashion_with(d, TL + ".gz", lambda p: os.symlink(p, p))})
    add(c, "training images /dev/zero", train(*quick), expect=["not a regular file"], data=F,
        setup=lambda d: {"F": fashion_with(d, TI + ".gz", lambda p: os.symlink("/dev/zero", p))})
    add(c, "table /dev/zero", ["train", "--data", "/dev/zero", "--epochs", "1"], expect=["not a regular file"])
    add(c, "table a FIFO", ["train", "--data", "{P}", "--epochs", "1"], expect=["not a regular file"], setup=lambda d: {"P": fifo(d, "t.csv")})
    add(c, "corpus a FIFO", ["text", "train", "--text", "{P}"], expect=["not a regular file"], setup=lambda d: {"P": fifo(d, "c.txt")})
    add(c, "corpus /dev/zero", ["text", "train", "--text", "/dev/zero"], expect=["not a regular file"])
    add(c, "model a FIFO (evaluate)", ["evaluate", "--model", "{P}", "--data", "{F}"], expect=["not a regular file"], data=F,
        setup=lambda d: {"F": fashion(d), "P": fifo(d, "m.safetensors")})
    add(c, "model a FIFO (rl play)", ["rl", "play", "--model", "{P}"], expect=["not a regular file"], setup=lambda d: {"P": fifo(d, "p.safetensors")})
    add(c, "model a FIFO (text sample)", ["text", "sample", "--model", "{P}"], expect=["not a regular file"], setup=lambda d: {"P": fifo(d, "t.safetensors")})

    # --- memory ----------------------------------------------------------------------------------------------
    c = "memory"
    add(c, "gzip bomb: 1 GiB behind a 60000x28x28 header", train(*quick), expect=["decompresses to more than that"], data=F,
        setup=with_fashion(replace={TI + ".gz": bomb([60000, 28, 28], 1 << 30)}))
    add(c, "gzip bomb: 1 GiB behind a 10000-label header", ["evaluate", "--model", "{M}", "--data", "{F}"], expect=["decompresses to more than that"],
        data=F, setup=lambda d: {"F": fashion(d, replace={EL + ".gz": bomb([10000], 1 << 30)}), "M": copy_model(d, "mlp.safetensors")})
    add(c, "header claims 2^40 bytes, file tiny", train(*quick), expect=["truncated", "missing"], data=F,
        setup=with_fashion(replace={TI + ".gz": gzip_member(header([1 << 16, 1 << 16, 256]) + b"\0" * 100)}))
    add(c, "header claims 4 billion labels", train(*quick), expect=["truncated"], data=F,
        setup=with_fashion(replace={TL + ".gz": gzip_member(header([4_000_000_000]) + raw[TL][8:])}))
    add(c, "raw images, header claims 2^40 bytes", train(*quick), expect=["truncated"], data=F,
        setup=with_fashion(replace={TI: header([1 << 16, 1 << 16, 256]) + raw[TI][16:]}))
    add(c, "raw images with 200 MB of trailing bytes", train(*quick), expect=["extra after the last element"], data=F,
        setup=with_fashion(replace={TI: raw[TI] + bytes(200 << 20)}))
    add(c, "gzip images with 100 MB of garbage after the stream", train(*quick), expect=["garbage after the gzip stream"], data=F,
        setup=lambda d: {"F": fashion_with(d, TI + ".gz", lambda p: write_garbage_after(p, 100 << 20))})
    add(c, "gzip images cut in half", train(*quick), expect=["truncated gzip data"], data=F,
        setup=lambda d: {"F": fashion_with(d, TI + ".gz", lambda p: write_prefix(p, 0.5))})
    add(c, "safetensors header length 100 GB", ["evaluate", "--model", "{M}", "--data", "{F}"], expect=["exceeds"], data=F,
        setup=lambda d: {"F": fashion(d), "M": write(d, "m.safetensors", struct.pack("<Q", 100 << 30) + b"{}")})
    add(c, "safetensors tensor of shape [2^31, 2^31]", ["evaluate", "--model", "{M}", "--data", "{F}"], expect=["negative or huge shape"], data=F,
        setup=lambda d: {"F": fashion(d), "M": huge_tensor_model(d)})
    add(c, "--model lstm --hidden 65536", train("--layers", "784-10", "--model", "lstm", "--hidden", "65536"), expect=["needs about"],
        setup=with_fashion(), data=F)
    add(c, "--model gru --hidden 4096 --num-layers 64", train("--layers", "784-10", "--model", "gru", "--hidden", "4096", "--num-layers", "64"),
        expect=["needs about"], setup=with_fashion(), data=F)
    add(c, "text train --hidden 65536", ["text", "train", "--text", "{X}", "--hidden", "65536", "--batch-size", "10", "--sequence-length", "10"],
        expect=["needs about"], setup=lambda d: {"X": copy_corpus(d)})
    add(c, "text train: a step too large", ["text", "train", "--text", "{X}", "--batch-size", "100000", "--sequence-length", "100000"], 64,
        ["too large a step"], setup=lambda d: {"X": copy_corpus(d)})

    # --- wrong results ---------------------------------------------------------------------------------------
    c = "wrong results"
    full = ("--layers", "784-10", "--batch-size", "0", "--epochs", "2")
    for extra, label in ((["--learning-rate", "1e38"], "--learning-rate 1e38"), (["--weight-decay", "1e38", "--learning-rate", "1e38"], "--weight-decay 1e38"),
                         (["--clip-value", "1e38", "--learning-rate", "1e38"], "--clip-value"),
                         (["--optimizer", "adadelta", "--learning-rate", "1e38"], "adadelta"), (["--json", "--learning-rate", "1e38"], "--json")):
        add(c, f"full batch, {label}", train(*full, *extra, "--output", "{D}/m.safetensors"), expect=["training diverged"], setup=with_fashion(), data=F)
    add(c, "--preset seed --learning-rate 1e38", train("--preset", "seed", "--layers", "784-64-10", "--epochs", "2", "--learning-rate", "1e38"),
        expect=["training diverged"], setup=with_fashion(), data=F)
    add(c, "checkpoint every epoch of a diverging run", train(*full, "--learning-rate", "1e38", "--checkpoint-every", "1", "--checkpoint", "{D}/c.ckpt"),
        expect=["training diverged"], setup=with_fashion(), data=F)
    add(c, "resume a NaN optimizer state", train("--layers", "784-16-10", "--optimizer", "adam", "--epochs", "2", "--resume", "{C}"),
        expect=["optimizer.exp_avg", "NaN"], data=F,
        setup=lambda d: {"F": fashion(d), "C": edited_model(d, "adam.ckpt", "c.ckpt", tensor=("optimizer.exp_avg", float("nan")))})
    add(c, "resume with another --activation", train("--layers", "784-16-10", "--optimizer", "adam", "--epochs", "2", "--resume", "{C}", "--activation", "tanh"),
        expect=["--activation tanh conflicts with"], data=F, setup=lambda d: {"F": fashion(d), "C": copy_model(d, "adam.ckpt")})
    add(c, "resume with --dropout", train("--layers", "784-16-10", "--optimizer", "adam", "--epochs", "2", "--resume", "{C}", "--dropout", "0.5"),
        expect=["--dropout 0.5 conflicts with"], data=F, setup=lambda d: {"F": fashion(d), "C": copy_model(d, "adam.ckpt")})
    add(c, "resume with another --optimizer", train("--layers", "784-16-10", "--optimizer", "sgd", "--epochs", "2", "--resume", "{C}"),
        expect=["resume with the same --layers and --optimizer"], data=F, setup=lambda d: {"F": fashion(d), "C": copy_model(d, "adam.ckpt")})
    add(c, "resume a negative epoch count", train("--layers", "784-16-10", "--optimizer", "adam", "--epochs", "2", "--resume", "{C}"),
        expect=["neither can be negative"], data=F,
        setup=lambda d: {"F": fashion(d), "C": edited_model(d, "adam.ckpt", "c.ckpt", {"backprop.epoch": "-3"})})
    add(c, "resume Adam without exp_avg_sq", train("--layers", "784-16-10", "--optimizer", "adam", "--epochs", "2", "--resume", "{C}"),
        expect=["lacks optimizer.exp_avg_sq"], data=F, setup=lambda d: {"F": fashion(d), "C": without_tensor(d, "adam.ckpt", "optimizer.exp_avg_sq")})
    add(c, "--model cnn --batch-norm", train("--model", "cnn", "--layers", "784-10", "--batch-norm"), 64, ["does not take --batch-norm"],
        setup=with_fashion(), data=F)
    add(c, "--model cnn --dropout 0.5", train("--model", "cnn", "--layers", "784-10", "--dropout", "0.5"), 64, ["does not take --dropout"],
        setup=with_fashion(), data=F)
    add(c, "--model cnn --layers 784-100-10", train("--model", "cnn", "--layers", "784-100-10"), 64, ["has its own hidden layers"],
        setup=with_fashion(), data=F)
    add(c, "--model cnn on 14x56 images", train("--model", "cnn", "--layers", "784-10", "--epochs", "1"), expect=["needs square"], data=F,
        setup=with_fashion(replace={TI + ".gz": gzip_member(idx([60000, 14, 56], raw[TI][16:])),
                                    EI + ".gz": gzip_member(idx([10000, 14, 56], raw[EI][16:]))}))
    add(c, "training 28x28, test 14x56 images", train(*quick), expect=["of 28×28 pixels like the training images", "found 14×56"], data=F,
        setup=with_fashion(replace={EI + ".gz": gzip_member(idx([10000, 14, 56], raw[EI][16:]))}))
    add(c, "evaluate a 28x28 CNN on 14x56 images", ["evaluate", "--model", "{M}", "--data", "{F}"], expect=["takes 28×28 images", "are 14×56"], data=F,
        setup=lambda d: {"F": fashion(d, replace={EI + ".gz": gzip_member(idx([10000, 14, 56], raw[EI][16:]))}), "M": copy_model(d, "cnn.safetensors")})
    add(c, "--hidden with an MLP", train("--layers", "784-10", "--hidden", "64"), 64, ["--hidden, --num-layers and --bidirectional are for"],
        setup=with_fashion(), data=F)
    add(c, "evaluate on zero test images", ["evaluate", "--model", "{M}", "--data", "{F}"], expect=["found none"], data=F,
        setup=lambda d: {"F": fashion(d, replace={EI + ".gz": gzip_member(header([0, 28, 28])), EL + ".gz": gzip_member(header([0]))}),
                         "M": copy_model(d, "mlp.safetensors")})
    add(c, "evaluate a 3-class model on 10 classes", ["evaluate", "--model", "{M}", "--data", "{F}"],
        expect=["label 9 (item 0) is outside the model's 3 classes", "three.safetensors"], data=F,
        setup=lambda d: {"F": fashion(d), "M": copy_model(d, "three.safetensors")})
    add(c, "predict a 3-class model on 10 classes", ["predict", "--model", "{M}", "--data", "{F}", "--index", "0"],
        expect=["is outside the model's 3 classes"], data=F, setup=lambda d: {"F": fashion(d), "M": copy_model(d, "three.safetensors")})
    add(c, "train --layers 784-5 on 10 classes", train("--layers", "784-5", "--epochs", "1"), expect=["is outside the network's 5 classes", "--layers 784-5"],
        setup=with_fashion(), data=F)
    add(c, "evaluate a model of 784 inputs on 16-pixel images", ["evaluate", "--model", "{M}", "--data", "{F}"], expect=["takes 784 inputs"], data=F,
        setup=lambda d: {"F": fashion(d, replace={EI + ".gz": gzip_member(idx([10000, 4, 4], raw[EI][16:16 + 160000]))}),
                         "M": copy_model(d, "mlp.safetensors")})
    add(c, "--loss cross-entropy on a regression table", ["train", "--data", "{T}", "--target", "price_k", "--loss", "cross-entropy", "--epochs", "1"],
        expect=["learnt by regression"], setup=lambda d: {"T": copy_model_table(d, "houses.csv")})

    # --- unclear messages ------------------------------------------------------------------------------------
    c = "unclear messages"
    for flags, message in ((["--epochs", "-1"], "--epochs must be at least 1"), (["--threads", "-1"], "--threads must be in 1...1024; got -1"),
                           (["--learning-rate", "-0.1"], "--learning-rate must be positive and finite; got -0.1"),
                           (["--seed", "-1"], "out of range (a whole number from 0 to 18446744073709551615)"),
                           (["--min-learning-rate", "inf", "--schedule", "cosine"], "--min-learning-rate must be finite"),
                           (["--learning-rate", "1e400"], "out of range (the largest magnitude a 32-bit float holds"),
                           (["--momentum", "1e-50"], "out of range (the smallest non-zero magnitude"),
                           (["--epochs", "99999999999999999999"], "out of range (a whole number from"),
                           (["--batch-size", "6.5"], "not a whole number"), (["--gamma", "abc"], "not a number"),
                           (["--validation-fraction", "1e-400"], "out of range")):
        add(c, " ".join(flags), ["train"] + flags, 64, [message])
    add(c, "test and training images of other sizes", train(*quick), expect=["t10k-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz", "of 28×28 pixels", "found 4×4"],
        data=F, setup=with_fashion(replace={EI + ".gz": gzip_member(idx([10000, 4, 4], raw[EI][16:16 + 160000]))}))
    add(c, "images and labels of other counts", train(*quick), expect=["holds 60000 images but", "holds 59999 labels"], data=F,
        setup=with_fashion(replace={TL + ".gz": gzip_member(idx([59999], raw[TL][8:-1]))}))
    add(c, "raw labels truncated", train(*quick), expect=["train-labels-idx1-ubyte: truncated: its header gives 60000 elements", "(10 missing)"], data=F,
        setup=with_fashion(replace={TL: raw[TL][:-10]}))
    add(c, "gzip labels with extra bytes", train(*quick), expect=["decompresses to more than that"], data=F,
        setup=with_fashion(replace={TL + ".gz": gzip_member(raw[TL] + b"\1\2\3")}))
    add(c, "a missing model is named once", ["evaluate", "--model", "{D}/none.safetensors", "--data", "{F}"], expect=["none.safetensors: no such file"],
        setup=with_fashion(), data=F)
    add(c, "rl train --learning-rate 1e30", ["rl", "train", "--learning-rate", "1e30", "--episodes", "5", "--quiet"],
        expect=["episode 2: training diverged", "try a lower --learning-rate than 1e+30"])
    add(c, "text sample --temperature 1e400", ["text", "sample", "--model", "{M}", "--temperature", "1e400"], 64, ["out of range"],
        setup=lambda d: {"M": copy_model(d, "text.safetensors")})
    add(c, "rl train --gamma 2", ["rl", "train", "--gamma", "2"], 64, ["--gamma must be in [0, 1]"])
    add(c, "predict without --index", ["predict", "--model", "{M}", "--data", "{F}"], 64, ["--index"], setup=with_model("mlp.safetensors"), data=F)
    add(c, "an unknown subcommand", ["frobnicate"], 64, ["frobnicate"])
    add(c, "an unknown flag", ["train", "--frobnicate", "3"], 64, ["--frobnicate"])
    add(c, "--optimizer adamax", ["train", "--optimizer", "adamax"], 64, ["one of the following: sgd, momentum"])
    add(c, "--model perceptron", ["train", "--model", "perceptron"], 64, ["'mlp', 'cnn', 'rnn', 'lstm' or 'gru'"])
    add(c, "rl train --algorithm ppo", ["rl", "train", "--algorithm", "ppo"], 64, ["'reinforce' and 'actor-critic'"])

    # --- tables ----------------------------------------------------------------------------------------------
    c = "tables"
    tables = [("empty", "", "the file is empty"), ("header only", "a,b,c\n", "header but no rows"),
              ("ragged row", "a,b\n1,x\n2,y,3\n", "line 3: 3 fields, expected 2"),
              ("text in a numeric column", "a,b\n1,x\n2,y\nseven,x\n", "'seven' is not a number"),
              ("one class", "a,b\n1,x\n2,x\n3,x\n", "at least two classes"), ("NA target", "a,b\n1,x\nNA,y\n2,NA\n", "line 4, column 'b'"),
              ("a number too large for a Float", "a,b\n1,x\n1e400,y\n2,x\n", "out of range"),
              ("unterminated quote", 'a,b\n1,"x\n2,y\n', "not closed"), ("duplicate column", "a,a,b\n1,2,x\n3,4,y\n", "two columns of the header"),
              ("only a target column", "b\nx\ny\n", "no feature columns")]
    for label, text, message in tables:
        add(c, label, ["train", "--data", "{T}", "--epochs", "1"], expect=[message], setup=lambda d, t=text: {"T": table(d, "t.csv", t)})
    add(c, "not text (a NUL byte)", ["train", "--data", "{T}", "--epochs", "1"], expect=["not a text file"],
        setup=lambda d: {"T": write(d, "t.csv", b"a,b\n1,\0\n2,y\n")})
    add(c, "unknown --target", ["train", "--data", "{T}", "--target", "colour2", "--epochs", "1"], expect=["no column named 'colour2'"],
        setup=lambda d: {"T": copy_model_table(d, "fruit.csv")})
    add(c, "--task regression on a text target", ["train", "--data", "{T}", "--task", "regression", "--epochs", "1"], expect=["regression needs numeric targets"],
        setup=lambda d: {"T": copy_model_table(d, "fruit.csv")})
    add(c, "--target for images", train("--target", "x"), 64, ["--target is for tables"], setup=with_fashion(), data=F)
    add(c, "--validation-fraction 1.5", ["train", "--data", "{T}", "--validation-fraction", "1.5"], 64, ["must be in (0, 1)"],
        setup=lambda d: {"T": copy_model_table(d, "fruit.csv")})
    add(c, "--validation and --validation-fraction", ["train", "--data", "{T}", "--validation", "{T}", "--validation-fraction", "0.3"], 64,
        ["not both"], setup=lambda d: {"T": copy_model_table(d, "fruit.csv")})
    add(c, "evaluate a table model on images", ["evaluate", "--model", "{M}", "--data", "{F}"], expect=["was trained on a table"], data=F,
        setup=lambda d: {"F": fashion(d), "M": copy_model(d, "houses.safetensors")})
    add(c, "evaluate an image model on a table", ["evaluate", "--model", "{M}", "--data", "{T}"], expect=["was not trained on a table"],
        setup=lambda d: {"M": copy_model(d, "mlp.safetensors"), "T": copy_model_table(d, "fruit.csv")})
    add(c, "predict a table of an unknown category", ["predict", "--model", "{M}", "--data", "{T}"], expect=["'purple' is not one of the categories"],
        setup=lambda d: {"M": copy_model(d, "fruit.safetensors"), "T": replaced_table(d, "fruit.csv", "yellow", "purple")})
    add(c, "--layers of the wrong inputs", ["train", "--data", "{T}", "--layers", "3-100-2", "--epochs", "1"], expect=["--layers starts with 3 inputs"],
        setup=lambda d: {"T": copy_model_table(d, "fruit.csv")})
    add(c, "a validation table without the target", ["train", "--data", "{T}", "--validation", "{V}", "--epochs", "1"], expect=["v.csv: no column named"],
        setup=lambda d: {"T": copy_model_table(d, "fruit.csv"), "V": table(d, "v.csv", "weight_g,colour\n1,red\n")})
    add(c, "a table that is a folder", ["train", "--data", "{D}/t.csv", "--epochs", "1"], expect=["t.csv"],
        setup=lambda d: (os.makedirs(os.path.join(d, "t.csv")), {})[1])
    add(c, "--impute mean with an NA target", ["train", "--data", "{T}", "--impute", "mean", "--epochs", "1"], expect=["column 'b'"],
        setup=lambda d: {"T": table(d, "t.csv", "a,b\n1,x\n2,NA\n3,y\n4,x\n")})
    add(c, "evaluate a table missing a feature column", ["evaluate", "--model", "{M}", "--data", "{T}"], expect=["t.csv: no column named 'weight_g'"],
        setup=lambda d: {"M": copy_model(d, "fruit.safetensors"), "T": table(d, "t.csv", "colour,fruit\nred,apple\n")})

    # --- text ------------------------------------------------------------------------------------------------
    c = "text"
    for label, data, message in (("empty corpus", b"", "an empty file"), ("binary corpus", b"\x7fELF\0\1\2", "a binary file"),
                                 ("corpus too short", b"abc " * 100, "shorter than one sequence")):
        add(c, label, ["text", "train", "--text", "{X}"], expect=[message], setup=lambda d, b=data: {"X": write(d, "c.txt", b)})
    add(c, "missing corpus", ["text", "train", "--text", "{D}/none.txt"], expect=["none.txt: no such file"])
    add(c, "corpus a folder", ["text", "train", "--text", "{D}"], expect=["it is a directory"])
    add(c, "--cell tcn", ["text", "train", "--text", "x", "--cell", "tcn"], 64, ["--cell must be lstm, gru or rnn"])
    add(c, "--dropout with one layer", ["text", "train", "--text", "x", "--dropout", "0.5"], 64, ["needs --num-layers 2 or more"])
    add(c, "--sequence-length 0", ["text", "train", "--text", "x", "--sequence-length", "0"], 64, ["--sequence-length must be"])
    add(c, "no --text", ["text", "train"], 64, ["--text"])
    add(c, "sample --length -1", ["text", "sample", "--model", "{M}", "--length", "-1"], 64, ["--length must be in"],
        setup=lambda d: {"M": copy_model(d, "text.safetensors")})
    add(c, "sample a missing model", ["text", "sample", "--model", "{D}/none.safetensors"], expect=["none.safetensors: no such file"])
    add(c, "sample --prime outside the vocabulary", ["text", "sample", "--model", "{M}", "--prime", "Zebra\u00e9"],
        expect=["--prime: not in the model's vocabulary: 'Z', \\xA9, \\xC3"], setup=lambda d: {"M": copy_model(d, "text.safetensors")})
    add(c, "sample a model with a damaged vocabulary", ["text", "sample", "--model", "{M}"], expect=["its vocabulary has '300', not a byte"],
        setup=lambda d: {"M": edited_model(d, "text.safetensors", "t.safetensors", {"backprop.text.vocabulary": vocabulary_with("300")})})
    add(c, "sample a model whose vocabulary is out of order", ["text", "sample", "--model", "{M}"], expect=["not distinct bytes in increasing order"],
        setup=lambda d: {"M": edited_model(d, "text.safetensors", "t.safetensors", {"backprop.text.vocabulary": reversed_vocabulary()})})
    add(c, "sample a model without a vocabulary", ["text", "sample", "--model", "{M}"], expect=["no vocabulary"],
        setup=lambda d: {"M": edited_model(d, "text.safetensors", "t.safetensors", {"backprop.text.vocabulary": None})})

    # --- recurrent -------------------------------------------------------------------------------------------
    c = "recurrent"
    rec = lambda *a: train("--layers", "784-10", *a)
    add(c, "--model lstm --activation sigmoid", rec("--model", "lstm", "--activation", "sigmoid"), 64, ["does not take --activation"], setup=with_fashion(), data=F)
    add(c, "--model gru --init xavier", rec("--model", "gru", "--init", "xavier"), 64, ["does not take --init"], setup=with_fashion(), data=F)
    add(c, "--model rnn --dropout without layers", rec("--model", "rnn", "--dropout", "0.2"), 64, ["--num-layers 2 or more"], setup=with_fashion(), data=F)
    add(c, "--hidden 0", rec("--model", "lstm", "--hidden", "0"), 64, ["--hidden must be in 1...65536"], setup=with_fashion(), data=F)
    add(c, "--num-layers 65", rec("--model", "lstm", "--num-layers", "65"), 64, ["--num-layers must be in 1...64"], setup=with_fashion(), data=F)
    add(c, "--bidirectional with an MLP", rec("--bidirectional"), 64, ["are for --model rnn, lstm or gru"], setup=with_fashion(), data=F)
    add(c, "--model rnn --layers 784-128-10", train("--layers", "784-128-10", "--model", "rnn"), 64, ["has its own hidden layers"], setup=with_fashion(), data=F)
    add(c, "--model lstm on 14x56 images", rec("--model", "lstm", "--epochs", "1"), expect=["needs square"], data=F,
        setup=with_fashion(replace={TI + ".gz": gzip_member(idx([60000, 14, 56], raw[TI][16:])),
                                    EI + ".gz": gzip_member(idx([10000, 14, 56], raw[EI][16:]))}))
    add(c, "resume an lstm checkpoint with another --hidden", rec("--model", "lstm", "--hidden", "16", "--epochs", "2", "--resume", "{C}"),
        expect=["--hidden 16 conflicts with"], data=F, setup=lambda d: {"F": fashion(d), "C": copy_model(d, "lstm.ckpt")})
    add(c, "resume an lstm checkpoint as gru", rec("--model", "gru", "--hidden", "8", "--epochs", "2", "--resume", "{C}"),
        expect=["--model gru conflicts with"], data=F, setup=lambda d: {"F": fashion(d), "C": copy_model(d, "lstm.ckpt")})
    add(c, "predict an lstm model on 14x56 images", ["predict", "--model", "{M}", "--data", "{F}", "--index", "0"],
        expect=["reads images row by row, 28 pixels a row", "are 14×56"], data=F,
        setup=lambda d: {"F": fashion(d, replace={EI + ".gz": gzip_member(idx([10000, 14, 56], raw[EI][16:]))}), "M": copy_model(d, "lstm.safetensors")})
    add(c, "evaluate an lstm model with a damaged layer list", ["evaluate", "--model", "{M}", "--data", "{F}"], expect=["cannot read the layer list"], data=F,
        setup=lambda d: {"F": fashion(d), "M": edited_model(d, "lstm.safetensors", "m.safetensors", {"backprop.layers": '[{"type":"lstm","hiddenSize":-4}]'})})
    add(c, "evaluate an lstm model of 65 layers", ["evaluate", "--model", "{M}", "--data", "{F}"], expect=["m.safetensors"], data=F,
        setup=lambda d: {"F": fashion(d), "M": lstm_with_layers(d, 65)})
    add(c, "evaluate an lstm model without its weights", ["evaluate", "--model", "{M}", "--data", "{F}"], expect=["rnn.weight_ih_l0"], data=F,
        setup=lambda d: {"F": fashion(d), "M": without_tensor(d, "lstm.safetensors", "rnn.weight_ih_l0")})

    # --- output paths ----------------------------------------------------------------------------------------
    c = "output paths"
    add(c, "--output ending in /", train(*quick, "--output", "{D}/new/"), expect=["ends with '/'"], setup=with_fashion(), data=F)
    add(c, "--output a name too long", train(*quick, "--output", "{D}/" + "a" * 300), expect=["too long"], setup=with_fashion(), data=F)
    add(c, "--output a symbolic link", train(*quick, "--output", "{L}"), expect=["is a symbolic link"], data=F,
        setup=lambda d: {"F": fashion(d), "L": symlink_to_model(d)})
    add(c, "--plot /dev/zero", train(*quick, "--plot", "/dev/zero"), expect=["--plot /dev/zero exists and is not a regular file"], setup=with_fashion(), data=F,
        check=still_device("/dev/zero"))
    add(c, "--plot in a missing folder", train(*quick, "--plot", "{D}/nowhere/c.svg"), expect=["--plot", "the folder does not exist"],
        setup=with_fashion(), data=F)
    add(c, "--checkpoint a folder", train(*quick, "--checkpoint-every", "1", "--checkpoint", "{D}"), expect=["--checkpoint", "not a regular file"],
        setup=with_fashion(), data=F)
    add(c, "--checkpoint under a regular file", train(*quick, "--checkpoint-every", "1", "--checkpoint", "{M}/c.ckpt"), expect=["--checkpoint"], data=F,
        setup=lambda d: {"F": fashion(d), "M": copy_model(d, "mlp.safetensors")})
    add(c, "--checkpoint in /proc", train(*quick, "--checkpoint-every", "1", "--checkpoint", "/proc/c.ckpt"), expect=["cannot be made"],
        setup=with_fashion(), data=F)
    add(c, "the default checkpoint is a folder", train(*quick, "--checkpoint-every", "1"), expect=["checkpoint.safetensors"], data=F,
        setup=lambda d: (os.makedirs(os.path.join(d, "checkpoint.safetensors")), {"F": fashion(d)})[1])
    add(c, "text train --output ending in /", ["text", "train", "--text", "{X}", "--output", "{D}/new/"], expect=["ends with '/'"],
        setup=lambda d: {"X": copy_corpus(d)})
    add(c, "text train --output a symbolic link", ["text", "train", "--text", "{X}", "--output", "{L}"], expect=["is a symbolic link"],
        setup=lambda d: {"X": copy_corpus(d), "L": symlink_to_model(d)})
    add(c, "text train default output is a folder", ["text", "train", "--text", "{X}"], expect=["text-model.safetensors"],
        setup=lambda d: (os.makedirs(os.path.join(d, "text-model.safetensors")), {"X": copy_corpus(d)})[1])
    add(c, "rl train --output in a missing folder", ["rl", "train", "--episodes", "2", "--output", "{D}/none/p.safetensors"], expect=["the folder does not exist"])
    add(c, "rl train --output in /proc", ["rl", "train", "--episodes", "2", "--output", "/proc/p.safetensors"], expect=["cannot be made"])
    add(c, "table --output in /proc", ["train", "--data", "{T}", "--epochs", "1", "--output", "/proc/m.safetensors"], expect=["cannot be made"],
        setup=lambda d: {"T": copy_model_table(d, "fruit.csv")})

    # --- stdout failures -------------------------------------------------------------------------------------
    c = "stdout failures"
    for sink in ("/dev/full", "closed-pipe"):
        label = "a full disk" if sink == "/dev/full" else "a closed pipe"
        add(c, f"train into {label}", train(*quick), expect=["cannot write to standard output"], setup=with_fashion(), data=F, stdout=sink)
        add(c, f"evaluate into {label}", ["evaluate", "--model", "{M}", "--data", "{F}"], expect=["cannot write to standard output"],
            setup=with_model("mlp.safetensors"), data=F, stdout=sink)
        add(c, f"predict into {label}", ["predict", "--model", "{M}", "--data", "{F}", "--index", "0", "--count", "3"],
            expect=["cannot write to standard output"], setup=with_model("mlp.safetensors"), data=F, stdout=sink)
        add(c, f"text sample into {label}", ["text", "sample", "--model", "{M}", "--length", "100000"], expect=["cannot write to standard output"],
            setup=lambda d: {"M": copy_model(d, "text.safetensors")}, stdout=sink)
        add(c, f"rl play into {label}", ["rl", "play", "--model", "{M}", "--episodes", "3"], expect=["cannot write to standard output"],
            setup=lambda d: {"M": copy_model(d, "policy.safetensors")}, stdout=sink)
        add(c, f"predict a table into {label}", ["predict", "--model", "{M}", "--data", "{T}"], expect=["cannot write to standard output"],
            setup=lambda d: {"M": copy_model(d, "fruit.safetensors"), "T": copy_model_table(d, "fruit.csv")}, stdout=sink)
        add(c, f"--help into {label}", ["--help"], expect=["cannot write to standard output"], stdout=sink)
        add(c, f"evaluate --json into {label}", ["evaluate", "--model", "{M}", "--data", "{F}", "--json"], expect=["cannot write to standard output"],
            setup=with_model("mlp.safetensors"), data=F, stdout=sink)
    return cases


def fashion_with(folder, name, make):
    """Fashion-MNIST with `name` (a .gz file) made by make(path) instead of linked."""
    d = fashion(folder, remove=(name,))
    make(os.path.join(d, name))
    return d


def write_garbage_after(path, count):
    with open(path, "wb") as f:
        with open(os.path.join(FX.pristine, os.path.basename(path)), "rb") as source:
            shutil.copyfileobj(source, f)
        f.write(b"\x55" * count)


def write_prefix(path, fraction):
    with open(os.path.join(FX.pristine, os.path.basename(path)), "rb") as source:
        data = source.read()
    with open(path, "wb") as f:
        f.write(data[:int(len(data) * fraction)])


def copy_corpus(folder):
    path = os.path.join(folder, "corpus.txt")
    shutil.copyfile(FX.corpus, path)
    return path


def copy_model_table(folder, name, as_name=None):
    path = os.path.join(folder, as_name or name)
    shutil.copyfile(os.path.join(FX.tables, name), path)
    return path


def replaced_table(folder, name, old, new):
    with open(os.path.join(FX.tables, name)) as f:
        text = f.read()
    return write(folder, name, text.replace(old, new))


def damaged_table_checkpoint(folder):

    head, data = read_safetensors(os.path.join(FX.models, "fruit.ckpt"))
    schema = json.loads(head["__metadata__"]["table"])
    schema["standardization"]["featureScales"].pop()
    head["__metadata__"]["table"] = json.dumps(schema)
    path = os.path.join(folder, "c.ckpt")
    write_safetensors(path, head, data)
    return path


def without_tensor(folder, source, tensor):
    head, data = read_safetensors(os.path.join(FX.models, source))
    del head[tensor]
    path = os.path.join(folder, "m-" + source)
    write_safetensors(path, head, data)
    return path


def huge_tensor_model(folder):
    head, data = read_safetensors(os.path.join(FX.models, "mlp.safetensors"))
    head["0.weight"]["shape"] = [1 << 31, 1 << 31]
    path = os.path.join(folder, "m.safetensors")
    write_safetensors(path, head, data)
    return path


def lstm_with_layers(folder, count):

    head, data = read_safetensors(os.path.join(FX.models, "lstm.safetensors"))
    layers = json.loads(head["__metadata__"]["backprop.layers"])
    layers[0]["numLayers"] = count
    head["__metadata__"]["backprop.layers"] = json.dumps(layers)
    path = os.path.join(folder, "m.safetensors")
    write_safetensors(path, head, data)
    return path


def vocabulary_with(item):
    head, _ = read_safetensors(os.path.join(FX.models, "text.safetensors"))
    return head["__metadata__"]["backprop.text.vocabulary"] + "," + item


def reversed_vocabulary():
    head, _ = read_safetensors(os.path.join(FX.models, "text.safetensors"))
    return ",".join(reversed(head["__metadata__"]["backprop.text.vocabulary"].split(",")))


def symlink_to_model(folder):
    target = copy_model(folder, "mlp.safetensors", "target.safetensors")
    link = os.path.join(folder, "link.safetensors")
    os.symlink(target, link)
    return link


# ---------------------------------------------------------------------------------------------------------------
# Running and measuring.

def snapshot(folder):
    """Every entry under `folder` (not following links): its type and, for a regular file, size and SHA-256; for a
    link, its target."""
    entries = {}
    for top, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(top, name)
            rel = os.path.relpath(path, folder)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                entries[rel] = ("file", info.st_size, h.hexdigest())
            elif stat.S_ISLNK(info.st_mode):
                entries[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                entries[rel] = ("dir",)
            else:
                entries[rel] = ("special", stat.S_IFMT(info.st_mode))
    return entries


def difference(before, after):
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    parts = []
    if added: parts.append("left " + ", ".join(added))
    if removed: parts.append("removed " + ", ".join(removed))
    if changed: parts.append("changed " + ", ".join(changed))
    return "; ".join(parts)


# The measuring process holds the whole data set and more; a child forked from it would start with that memory
# resident, and Linux keeps a process's peak across exec, so ru_maxrss would report it. Cases are therefore started by
# a small helper process (started first, before anything is loaded), which forks, execs, waits with os.wait4 and
# reports.
HELPER = r"""
import json, os, signal, subprocess, sys, threading, time
for request in sys.stdin:
    r = json.loads(request)
    err = open(os.path.join(r["out"], "stderr"), "wb")
    close_after = []
    if r["stdout"] == "/dev/full":
        out = open("/dev/full", "wb")
    elif r["stdout"] == "closed-pipe":
        read_end, out = os.pipe()
        os.close(read_end)
        close_after.append(out)
    else:
        out = open(os.path.join(r["out"], "stdout"), "wb")
    start = time.monotonic()
    process = subprocess.Popen(r["arguments"], cwd=r["cwd"], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                               start_new_session=True)
    for fd in close_after:
        os.close(fd)
    if not isinstance(out, int):
        out.close()
    err.close()
    killed = []
    def watchdog():
        killed.append(True)
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    timer = threading.Timer(r["kill_after"], watchdog)
    timer.start()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - start
    timer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    print(json.dumps({"status": process.returncode, "seconds": seconds, "rss": usage.ru_maxrss * 1024, "killed": bool(killed)}), flush=True)
"""


class Runner:
    def __init__(self):
        self.helper = subprocess.Popen([sys.executable, "-c", HELPER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, binary, arguments, cwd, stdout="file", out_dir=None):
        """Runs the binary; returns (status or -signal, stderr bytes, seconds, peak RSS in bytes, killed)."""
        import json
        request = {"arguments": [binary] + arguments, "cwd": cwd, "stdout": stdout, "out": out_dir, "kill_after": TIME_LIMIT * 3}
        self.helper.stdin.write(json.dumps(request) + "\n")
        self.helper.stdin.flush()
        answer = json.loads(self.helper.stdout.readline())
        with open(os.path.join(out_dir, "stderr"), "rb") as f:
            stderr = f.read()
        return answer["status"], stderr, answer["seconds"], answer["rss"], answer["killed"]

    def close(self):
        self.helper.stdin.close()
        self.helper.wait()


def main():
    global FX
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default=".build/release/backprop")
    parser.add_argument("--fashion", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--class", dest="classes", action="append", choices=CLASSES)
    parser.add_argument("--verbose", action="store_true")
    options = parser.parse_args()
    binary = os.path.abspath(options.binary)
    if not os.access(binary, os.X_OK):
        sys.exit(f"{binary}: not found; build it first with: swift build -c release")
    if not os.path.isdir(options.fashion):
        sys.exit(f"{options.fashion}: Fashion-MNIST is not there (apt-get install dataset-fashion-mnist, or --fashion DIR)")
    runner = Runner()  # first, while this process is small
    root = tempfile.mkdtemp(prefix="backprop-hostile-")
    try:
        print(f"making fixtures in {root} ...", flush=True)
        FX = Fixtures(root, binary, options.fashion)
        pristine_before = snapshot(FX.pristine)
        models_before = snapshot(FX.models)
        idle = max(runner.run(binary, ["--help"], root, out_dir=root)[3] for _ in range(3))
        floor = 2 * idle
        print(f"Fashion-MNIST: {FX.fashion_bytes / 2**20:.1f} MiB decompressed (bound {2 * FX.fashion_bytes / 2**20:.1f} MiB); "
              f"idle backprop --help: {idle / 2**20:.1f} MiB (bound for cases with less data: {floor / 2**20:.1f} MiB)\n")
        cases = [c for c in catalogue() if not options.classes or c.cls in options.classes]
        results = {cls: [0, 0] for cls in CLASSES}
        worst_time, worst_memory, failures = (0.0, ""), (0.0, 0, 0, ""), []
        current = None
        for number, case in enumerate(cases, 1):
            if case.cls != current:
                current = case.cls
                print(f"== {current}")
            folder = os.path.join(root, "cases", f"{number:03d}")
            os.makedirs(folder)
            out_dir = os.path.join(root, "out", f"{number:03d}")
            os.makedirs(out_dir)
            subs = {"D": folder}
            if case.setup:
                subs.update(case.setup(folder) or {})
            arguments = [a.format(**subs) for a in case.args]
            before = snapshot(folder)
            status, stderr, seconds, rss, killed = runner.run(binary, arguments, folder, case.stdout, out_dir)
            after = snapshot(folder)
            text = stderr.decode("utf-8", "replace")
            bound = max(2 * case.data, floor)
            reasons = []
            if killed:
                reasons.append(f"killed after {seconds:.0f} s")
            if status != case.status:
                reasons.append(f"status {status if status >= 0 else 'signal ' + str(-status)}, expected {case.status}")
            if not (text.startswith("backprop: error: ") and text.endswith("\n") and text.count("\n") == 1):
                reasons.append(f"stderr is {text.count(chr(10))} lines")
            missing = [e for e in case.expect if e not in text]
            if missing:
                reasons.append("stderr lacks " + "; ".join(repr(m) for m in missing))
            if seconds >= TIME_LIMIT:
                reasons.append(f"{seconds:.1f} s")
            if rss > bound:
                reasons.append(f"peak {rss / 2**20:.1f} MiB > {bound / 2**20:.1f} MiB")
            disk = difference(before, after)
            if disk:
                reasons.append("disk: " + disk)
            if case.check:
                problem = case.check(folder)
                if problem:
                    reasons.append(problem)
            results[case.cls][0] += 1
            results[case.cls][1] += not reasons
            if seconds > worst_time[0]:
                worst_time = (seconds, f"{case.cls}: {case.name}")
            if rss / bound > worst_memory[0]:
                worst_memory = (rss / bound, rss, bound, f"{case.cls}: {case.name}")
            source = "2×data" if 2 * case.data >= floor else "2×idle"
            line = (f"  {'PASS' if not reasons else 'FAIL'} {case.name[:58]:58} status {status:3} {seconds:5.2f} s "
                    f"{rss / 2**20:6.1f} MiB ≤ {bound / 2**20:6.1f} ({source})")
            print(line + ("" if not reasons else "\n       " + "; ".join(reasons)), flush=True)
            if options.verbose or reasons:
                print("       stderr: " + text.strip().replace("\n", "\n               "))
            if reasons:
                failures.append(case)
            shutil.rmtree(folder, ignore_errors=True)
        problems = []
        if snapshot(FX.pristine) != pristine_before:
            problems.append("the pristine Fashion-MNIST copy changed")
        if snapshot(FX.models) != models_before:
            problems.append("a fixture model changed")
        print("\nclass                 cases  passed")
        total = [0, 0]
        for cls in CLASSES:
            n, passed = results[cls]
            if n:
                print(f"{cls:20} {n:6} {passed:7}")
                total[0] += n
                total[1] += passed
        print(f"{'total':20} {total[0]:6} {total[1]:7}")
        print(f"largest wall time: {worst_time[0]:.2f} s ({worst_time[1]})")
        print(f"largest peak memory against its bound: {worst_memory[1] / 2**20:.1f} MiB of {worst_memory[2] / 2**20:.1f} MiB "
              f"({100 * worst_memory[0]:.0f} %, {worst_memory[3]})")
        for problem in problems:
            print("FAIL: " + problem)
        return 0 if total[0] == total[1] and not problems else 1
    finally:
        runner.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
