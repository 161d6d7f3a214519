#!/usr/bin/env python3
"""Writes seed corpora for the fuzz targets into fuzz/corpus/<target>/ from the repository's
own fixtures (webhook and bot testdata, golden transcripts). Run from the repository root:
    python3 fuzz/seeds/make_seeds.py
The byte layouts are those documented in flows/src/fuzzing.rs."""
import glob, hashlib, os, re, struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "fuzz", "corpus")
SEP = b"\xff"

def put(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

# WhatsApp and Telegram: the fixtures as they are.
for p in glob.glob(os.path.join(ROOT, "webhook/tests/testdata/*.json")):
    put("whatsapp_parse", open(p, "rb").read())
for p in glob.glob(os.path.join(ROOT, "bot/tests/testdata/*.json")):
    put("telegram_update", open(p, "rb").read())

# Typed inputs from the transcripts, for understand and reference_parse.
inputs = []
for p in sorted(glob.glob(os.path.join(ROOT, "flows/tests/transcripts/*.txt"))):
    for line in open(p, encoding="utf-8"):
        if line.startswith("> ") and not line.startswith("> ["):
            inputs.append(line[2:].rstrip("\n"))
extra = ["C-7K3Q-9XM4-R", "c 7k3q 9xm4 r", "L-7K3Q-9XM4-K", "F-7K3Q-9XM4-9", "C-7K3Q-9XM4-S",
         "सी-७के३क्यू", "+91 98765 43210", "0091-98765-43210", "४९०१५४२०३२३७५१८",
         "IMEI: 490154203237518", "25-11-2026", "12 मार्च 2026", "2 din pehle", "last monday",
         "kal raat", "परसों", "31-02-2026", "aadhaar 1234 5678 9012"]
for s in sorted(set(inputs + extra)):
    b = s.encode()
    put("understand", struct.pack("<H", 9828) + b"\x3e" + b)  # today = 2026-11-28
    put("reference_parse", b"\x00" + bytes(range(8)) + b"\x03\x07" + b)

# Fluent: one seed per message index, with a text and a number argument.
for i in range(0, 160):
    put("fluent_render", struct.pack("<H", i) + SEP + b"\x01\x02Kotwali" + SEP + b"\x02\x00\x05")

# Dialogue: each transcript as a sequence of input chunks (see flows/src/fuzzing.rs).
def chunk(line):
    m = re.match(r"\[(\w+) ?(.*)\]$", line)
    if not m:
        return b"\x00" + line.encode()
    kind, arg = m.group(1), m.group(2)
    if kind == "choice":
        return b"\x05" + arg.encode()
    if kind == "location":
        lat, lon = (float(x) for x in arg.split(","))
        return b"\x07" + struct.pack("<dd", lat, lon)
    if kind == "contact":
        phone, who = arg.rsplit(" ", 1)
        return (b"\x18" if who == "own" else b"\x08") + phone.encode()
    if kind == "photo":
        return b"\x09"
    if kind == "sticker":
        return b"\x49"
    if kind == "unsupported":
        return b"\x0a" + arg.encode()
    if kind == "wait":
        return b"\x0f" + struct.pack("<H", min(int(arg.rstrip("m")) // 4, 65535))
    if kind == "repeat":
        n, s = arg.split(" ", 1)
        return b"\x00" + (s * int(n)).encode()
    return None

for p in sorted(glob.glob(os.path.join(ROOT, "flows/tests/transcripts/*.txt"))):
    whatsapp = "whatsapp" in open(p, encoding="utf-8").read()
    flags = b"\x21" if whatsapp else b"\x00"
    parts = [flags]  # first chunk: profile flags only = a citizen never seen
    for line in open(p, encoding="utf-8"):
        if line.startswith("> "):
            c = chunk(line[2:].rstrip("\n"))
            if c is not None:
                parts.append(c)
    put("dialogue_step", SEP.join(parts[:48]))
# A stored state mid-journey, and a broken one.
put("dialogue_step", b"\x04" + b'{"version":1,"step":{"step":"ask","field":"description"},"draft":{"id":"d","kind":"complaint","category":"theft"},"last_seen":1795867000}' + SEP + b"\x00hello")
put("dialogue_step", b"\x04" + b'{"version":1,"step":{"step":"review"},"draft":{"id":"d","kind":"lost","category":"mobile","name":"A","phone":"+919876543210","consent":true},"last_seen":0}' + SEP + b"\x05review:confirm")
put("dialogue_step", b"\x00{\"version\":0}" + SEP + b"\x00hi")
