#!/usr/bin/env python3
"""Checks saecooc's module rules (run by `make lint`).

- The stages (cooc, graph, pca, export, stats, train, bench, subspace, slurm) stand side by side: no stage
  refers to another (`crate::<stage>`); what they share lives below them.
- The layers below the stages never refer to a stage; only the command-line layer (main.rs,
  cli, app) calls them.
- No import cycle between the top-level modules of src/ (a module and its submodules count as
  one).

Prints each violation and exits 1 if there is any; `--graph` prints the module graph.
"""
import pathlib
import re
import sys

STAGES = {"cooc", "graph", "pca", "export", "stats", "train", "bench", "subspace", "slurm"}
# The command-line layer above the stages: the only code that may call them.
ENTRY = {"cli", "app"}
SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
REF = re.compile(r"\bcrate::(?:stages::)?([a-z_][a-z0-9_]*)")


def top_module(path: pathlib.Path) -> str:
    """The module a file belongs to: a stage under src/stages/, else a top-level module of src/."""
    rel = path.relative_to(SRC).parts
    if rel[0] == "stages" and len(rel) > 1:
        rel = rel[1:]
    return rel[0][:-3] if len(rel) == 1 else rel[0]


def strip_comments(text: str) -> str:
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def module_graph() -> dict:
    graph = {}
    for path in sorted(SRC.rglob("*.rs")):
        module = top_module(path)
        if module in ("main", "lib", "mod"):
            continue
        refs = set(REF.findall(strip_comments(path.read_text(encoding="utf-8"))))
        graph.setdefault(module, set()).update(refs - {module})
    return graph


def cycles(graph: dict) -> list:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    graph = module_graph()
    if "--graph" in sys.argv:
        for m in sorted(graph):
            print(f"{m}: {', '.join(sorted(graph[m])) or '-'}")
    problems = [
        f"stage {m} refers to stage {n} (stages stand side by side; move what they share below them)"
        for m in sorted(graph)
        if m in STAGES
        for n in sorted(graph[m] & STAGES)
    ]
    problems += [
        f"module {m} refers to stage {n} (the layers below the stages never use a stage)"
        for m in sorted(graph)
        if m not in STAGES and m not in ENTRY
        for n in sorted(graph[m] & STAGES)
    ]
    problems += [f"import cycle between modules: {' <-> '.join(c)}" for c in cycles(graph)]
    for p in problems:
        print(p)
    if not problems:
        print(f"module rules hold: {len(graph)} modules, no stage imports a stage, no cycle")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
