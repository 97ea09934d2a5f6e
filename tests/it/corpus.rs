//! Any corpus in bounded memory: long documents tokenized in pieces give the tokens and
//! windows of whole-document tokenization; a dataset folder with symlink cycles and duplicate
//! files is read once per real file; a corpus that is one line of tens of MB runs `cooc` in
//! the memory of a normal run; a dataset laid out as the pile ships it (`train/NN.jsonl.zst`)
//! counts as the same text in plain JSONL.

use crate::common;
use crate::common::{assert_ok, config_text, fixture, gpt2_tokenizer, run_with_peak_rss};
use saecooc::data::{
    Documents, Piece, PieceSizes, PieceStart, WindowStream, WindowTokens, Windower,
};
use saecooc::hub::{Hub, Location};
use saecooc::io::npz::read_npz;
use saecooc::tokenizer::{cuts_at_spaces_are_exact, encode_documents, gpt2_bpe};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::Split;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{SplitDelimiterBehavior, Tokenizer};

const GPT2_BOS: u32 = 50256;

/// The binary under test: this build, or the one `SAECOOC_TEST_BIN` names (to check that the
/// end-to-end tests fail on a build without bounded reading).
fn saecooc(args: &[&str]) -> Command {
    let bin = std::env::var_os("SAECOOC_TEST_BIN");
    let mut cmd = Command::new(bin.unwrap_or_else(|| env!("CARGO_BIN_EXE_saecooc").into()));
    cmd.args(args);
    cmd
}

/// GPT-2's BPE behind other pre-tokenizers: the layouts of Llama 3's, Qwen2's and SmolLM2's
/// tokenizers (their own vocabularies are not at hand; the cuts depend on the pre-tokenizer).
fn gpt2_with(pre: Vec<PreTokenizerWrapper>) -> Tokenizer {
    let mut tokenizer = gpt2_tokenizer();
    tokenizer.with_pre_tokenizer(Some(Sequence::new(pre)));
    tokenizer
}

/// A split with `pattern`, then a byte-level mapping (Llama 3's and Qwen2's layout).
fn split_then_byte_level(pattern: &str) -> Tokenizer {
    let split = Split::new(
        tokenizers::pre_tokenizers::split::SplitPattern::Regex(pattern.into()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .unwrap();
    gpt2_with(vec![
        PreTokenizerWrapper::Split(split),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, false)),
    ])
}

fn llama3_style() -> Tokenizer {
    split_then_byte_level(
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    )
}

/// Qwen2's layout: NFC, its split pattern, a byte-level mapping.
fn qwen2_style() -> Tokenizer {
    let pattern = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    let mut tokenizer = split_then_byte_level(pattern);
    tokenizer
        .with_normalizer(Some(tokenizers::normalizers::unicode::NFC))
        .unwrap();
    tokenizer
}

fn smollm2_style() -> Tokenizer {
    gpt2_with(vec![
        PreTokenizerWrapper::Digits(Digits::new(true)),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
    ])
}

/// Long documents mixing what pre-tokenizers treat specially: contractions, digits, runs of
/// spaces, tabs and newlines, Unicode letters, marks, emoji and whitespace, punctuation and
/// the literal special-token string.
fn long_documents() -> Vec<String> {
    let words = [
        "Hello",
        "world",
        "don't",
        "I'm",
        "they'll",
        "WE'RE",
        "it's",
        "'s",
        "'",
        "12345",
        "3.14159",
        "2024-01-01",
        "007",
        "naïve",
        "\u{301}",
        "\u{2126}",
        "café",
        "e\u{301}",
        "日本語のテキスト",
        "Ελληνικά",
        "русский",
        "👍🏽",
        "🇫🇷",
        "<|endoftext|>",
        "...",
        "--",
        "(x)",
        "\"quoted\"",
        "a\tb",
        "\u{200b}",
        "x",
        "?!",
        "$100",
        "#tag",
        "@user",
        "\u{85}",
        "\u{1c}",
    ];
    let gaps = [
        " ",
        " ",
        " ",
        " ",
        "  ",
        "   ",
        "",
        "\n",
        "\n\n",
        " \n ",
        "\r\n",
        "\t",
        " \t",
        "\u{a0}",
        "\u{3000}",
        "  \u{2028}",
    ];
    let mut state = 0x2545_f491_u64;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize % n
    };
    (0..6)
        .map(|d| {
            let mut doc = String::new();
            if d % 2 == 1 {
                doc.push_str("   "); // a document starting with spaces
            }
            while doc.len() < 20_000 + 8_000 * d {
                doc.push_str(words[next(words.len())]);
                doc.push_str(gaps[next(gaps.len())]);
            }
            doc
        })
        .chain(["short one".to_string(), String::new(), " ".to_string()])
        .collect()
}

/// The documents as a JSONL file (one line each, whatever they hold).
fn write_jsonl(path: &Path, docs: &[String]) {
    let lines: Vec<String> = docs
        .iter()
        .map(|d| serde_json::json!({ "id": 1, "text": d }).to_string())
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Small pieces, so that every long document is cut hundreds of times.
const SMALL: PieceSizes = PieceSizes {
    block: 97,
    piece: 300,
    max_piece: 1 << 20,
};

fn pieces(path: &Path, sizes: PieceSizes) -> Vec<Piece> {
    let hub = Hub::from_env(false).unwrap();
    let location = Location::Local(path.to_path_buf());
    let mut docs = Documents::open_with(&location, &hub, "text", None, sizes).unwrap();
    std::iter::from_fn(|| docs.next_piece().unwrap()).collect()
}

#[test]
fn documents_tokenized_in_pieces_give_the_tokens_of_whole_documents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.jsonl");
    let docs = long_documents();
    write_jsonl(&path, &docs);
    let pieces = pieces(&path, SMALL);
    let cuts = pieces
        .iter()
        .filter(|p| p.start == PieceStart::Space)
        .count();
    assert!(cuts > 300, "only {cuts} cuts");
    assert!(pieces.iter().all(|p| p.start != PieceStart::Forced));

    for (name, tokenizer) in [
        ("gpt2", gpt2_tokenizer()),
        ("llama3-style", llama3_style()),
        ("qwen2-style", qwen2_style()),
        ("smollm2-style", smollm2_style()),
    ] {
        assert!(cuts_at_spaces_are_exact(&tokenizer), "{name}");
        let whole = encode_documents(&tokenizer, docs.clone()).unwrap();
        let texts = pieces.iter().map(|p| p.text.clone()).collect();
        let mut joined: Vec<Vec<u32>> = Vec::new();
        for (ids, p) in encode_documents(&tokenizer, texts)
            .unwrap()
            .into_iter()
            .zip(&pieces)
        {
            match p.start {
                PieceStart::Document => joined.push(ids),
                _ => joined.last_mut().unwrap().extend(ids),
            }
        }
        assert_eq!(joined.len(), whole.len(), "{name}: documents");
        for (k, (a, b)) in joined.iter().zip(&whole).enumerate() {
            let first = a.iter().zip(b).position(|(x, y)| x != y);
            assert!(a == b, "{name}: document {k} differs at token {first:?}");
        }
    }
}

/// Whether `doc` may be cut at byte `i`: just before an ASCII space that follows and precedes a
/// non-whitespace character (the rule of docs/formats.md, "Token windows").
fn cut_allowed(doc: &str, i: usize) -> bool {
    let non_ws = |c: Option<char>| c.is_some_and(|c| !c.is_whitespace());
    doc.as_bytes()[i] == b' '
        && non_ws(doc[..i].chars().next_back())
        && non_ws(doc[i + 1..].chars().next())
}

#[test]
fn every_cut_the_rule_allows_keeps_the_tokens() {
    let doc = &long_documents()[1];
    let doc = &doc[..(0..3000).rev().find(|&i| doc.is_char_boundary(i)).unwrap()];
    // Every place just before or just after an ASCII space.
    let spaces: Vec<usize> = (1..doc.len() - 1)
        .filter(|&i| doc.as_bytes()[i] == b' ' || doc.as_bytes()[i - 1] == b' ')
        .collect();
    for (name, tokenizer) in [
        ("gpt2", gpt2_tokenizer()),
        ("llama3-style", llama3_style()),
        ("qwen2-style", qwen2_style()),
        ("smollm2-style", smollm2_style()),
    ] {
        let whole = encode_documents(&tokenizer, vec![doc.to_string()]).unwrap();
        let halves: Vec<String> = spaces
            .iter()
            .flat_map(|&i| [doc[..i].to_string(), doc[i..].to_string()])
            .collect();
        let ids = encode_documents(&tokenizer, halves).unwrap();
        let mut changed = 0;
        for (k, &i) in spaces.iter().enumerate() {
            let same = [ids[2 * k].clone(), ids[2 * k + 1].clone()].concat() == whole[0];
            assert!(
                same || !cut_allowed(doc, i),
                "{name}: the cut at byte {i} changes tokens"
            );
            changed += usize::from(!same);
        }
        // Cuts just after a space change tokens: a change would be seen.
        assert!(changed > 10, "{name}: only {changed} cuts changed tokens");
    }
}

#[test]
fn windows_of_documents_in_pieces_equal_windows_of_whole_documents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.jsonl");
    let docs = long_documents();
    write_jsonl(&path, &docs);
    let tokenizer = gpt2_tokenizer();
    let tokens = WindowTokens {
        begin: Some(GPT2_BOS),
        separator: Some(GPT2_BOS),
    };
    for context_size in [7, 128] {
        let mut windower = Windower::new(context_size, tokens);
        let mut expected = Vec::new();
        for ids in encode_documents(&tokenizer, docs.clone()).unwrap() {
            windower.push_document(&ids);
            expected.extend(std::iter::from_fn(|| windower.pop_window()));
        }
        let hub = Hub::from_env(false).unwrap();
        let location = Location::Local(path.clone());
        let documents = Documents::open_with(&location, &hub, "text", None, SMALL).unwrap();
        let mut stream = WindowStream::new(documents, tokenizer.clone(), context_size, tokens);
        let ours: Vec<Vec<u32>> = std::iter::from_fn(|| stream.next_window().unwrap()).collect();
        assert_eq!(ours.len(), expected.len(), "context {context_size}");
        assert!(ours == expected, "context {context_size}: windows differ");
    }
}

#[test]
fn tokenizers_without_a_space_splitting_pre_tokenizer_are_not_called_exact() {
    let mut bare = gpt2_tokenizer();
    bare.with_pre_tokenizer(None::<PreTokenizerWrapper>);
    assert!(!cuts_at_spaces_are_exact(&bare));
    let no_regex = gpt2_with(vec![PreTokenizerWrapper::ByteLevel(ByteLevel::new(
        false, true, false,
    ))]);
    assert!(!cuts_at_spaces_are_exact(&no_regex));
}

/// `a.txt`, `sub/b.txt` and `sub/c.jsonl`, plus a symlinked and a hard-linked duplicate of
/// `a.txt` and `cycles` symlinks back up the tree.
fn looped_dataset(root: &Path, lines: &[&str], cycles: usize) {
    use std::os::unix::fs::symlink;
    let sub = root.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let third = lines.len() / 3;
    std::fs::write(root.join("a.txt"), lines[..third].join("\n")).unwrap();
    std::fs::write(sub.join("b.txt"), lines[third..2 * third].join("\n")).unwrap();
    let c: Vec<String> = lines[2 * third..]
        .iter()
        .map(|l| serde_json::json!({ "text": l }).to_string())
        .collect();
    std::fs::write(sub.join("c.jsonl"), c.join("\n")).unwrap();
    symlink("a.txt", root.join("dup.txt")).unwrap();
    std::fs::hard_link(root.join("a.txt"), sub.join("hard.txt")).unwrap();
    let targets = [("sub/up", ".."), ("sub/self", "."), ("loop", ".")];
    for (link, target) in &targets[..cycles] {
        symlink(target, root.join(link)).unwrap();
    }
}

/// Every piece of the folder's documents, read in a thread that must finish in time.
fn read_folder(root: &Path) -> Vec<String> {
    let root = root.to_path_buf();
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let docs: Vec<String> = pieces(&root, PieceSizes::default())
            .into_iter()
            .map(|p| p.text)
            .collect();
        let _ = send.send(docs);
    });
    receive
        .recv_timeout(Duration::from_secs(60))
        .expect("reading the folder did not finish within 60 s")
}

#[test]
fn symlink_cycles_and_duplicate_files_are_read_once() {
    let lines: Vec<String> = (0..9).map(|i| format!("document {i}")).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    for cycles in [1, 2, 3] {
        let dir = tempfile::tempdir().unwrap();
        looped_dataset(dir.path(), &lines, cycles);
        assert_eq!(read_folder(dir.path()), lines, "{cycles} cycles");
    }
}

/// Windows read once over `lines`, as the run's windows are cut.
fn windows_once(model: &Path, dir: &Path, lines: &[&str]) -> u64 {
    let plain = dir.join("plain.txt");
    std::fs::write(&plain, lines.join("\n")).unwrap();
    let tokenizer = gpt2_bpe(&model.join("vocab.json"), &model.join("merges.txt")).unwrap();
    let hub = Hub::from_env(false).unwrap();
    let docs = Documents::open(&Location::Local(plain), &hub, "text", None).unwrap();
    let bos = WindowTokens {
        begin: Some(GPT2_BOS),
        separator: Some(GPT2_BOS),
    };
    let mut stream = WindowStream::new(docs, tokenizer, 32, bos);
    while stream.next_window().unwrap().is_some() {}
    stream.windows_read
}

#[test]
fn cooc_on_a_folder_with_two_symlink_cycles_reads_each_file_once_and_ends() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let corpus = std::fs::read_to_string(&p.corpus).unwrap();
    let lines: Vec<&str> = corpus.lines().take(120).collect();
    let data = dir.path().join("data");
    looped_dataset(&data, &lines, 2);
    let expected = windows_once(&p.model, dir.path(), &lines);
    let config = config_text(&p, 1000, "").replace(
        &format!("dataset = \"{}\"", p.corpus.display()),
        &format!("dataset = \"{}\"", data.display()),
    );
    let config_path = dir.path().join("run.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut cmd = saecooc(&["--quiet", "cooc", "--config"]);
    cmd.arg(&config_path)
        .arg("--results-dir")
        .arg(dir.path().join("results"));
    let run = run_with_peak_rss(&mut cmd, dir.path(), Duration::from_secs(120));
    assert!(!run.timed_out, "cooc did not finish: {}", run.stderr);
    assert_ok(&run.output());
    for skipped in ["dup.txt", "sub/hard.txt", "sub/up", "sub/self"] {
        assert!(
            run.stderr
                .contains(&format!("note: skipping {}", data.join(skipped).display())),
            "no note on {skipped}: {}",
            run.stderr
        );
    }
    let manifest = common::files_under(&dir.path().join("results"))
        .into_iter()
        .find(|f| f.ends_with("run.json"))
        .expect("run.json");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    assert_eq!(json["data_exhausted"], true);
    assert_eq!(json["windows_read"].as_u64(), Some(expected));
}

/// A normal run, and a run whose corpus is one line of `mb` MB, must fit in the same memory:
/// the line is read a block at a time and tokenized in pieces of 256 KiB, and only the few
/// windows the run counts are ever tokenized.
#[test]
fn cooc_on_a_single_line_of_many_megabytes_stays_in_bounded_memory() {
    const MB: usize = 48;
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let corpus = std::fs::read_to_string(&p.corpus).unwrap();
    let words: Vec<&str> = corpus.split_whitespace().collect();
    let mut line = String::with_capacity(MB << 20);
    for w in words.iter().cycle() {
        if line.len() >= MB << 20 {
            break;
        }
        line.push_str(w);
        line.push(' ');
    }
    line.push('\n');
    let one_line = dir.path().join("one_line.txt");
    std::fs::write(&one_line, &line).unwrap();
    drop(line);

    let run = |name: &str, corpus: &Path| {
        let config = config_text(&p, 2, "").replace(
            &format!("dataset = \"{}\"", p.corpus.display()),
            &format!("dataset = \"{}\"", corpus.display()),
        );
        let config_path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&config_path, config).unwrap();
        let mut cmd = saecooc(&["--quiet", "cooc", "--config"]);
        cmd.arg(&config_path)
            .arg("--results-dir")
            .arg(dir.path().join(name));
        let run = run_with_peak_rss(&mut cmd, dir.path(), Duration::from_secs(300));
        assert!(!run.timed_out, "{name}: cooc did not finish");
        assert_ok(&run.output());
        run
    };
    let normal = run("normal", &p.corpus);
    let long = run("one_line", &one_line);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    eprintln!(
        "peak RSS: normal corpus {:.0} MiB in {:.1} s, one {MB} MB line {:.0} MiB in {:.1} s",
        mib(normal.peak_rss),
        normal.wall.as_secs_f64(),
        mib(long.peak_rss),
        long.wall.as_secs_f64()
    );
    // Reading the line whole held it several times over (and its tokens, ~100 bytes each in
    // the tokenizer's encoding): gigabytes. Bounded reading holds a few MiB of it.
    assert!(
        long.peak_rss < normal.peak_rss + (64 << 20),
        "one {MB} MB line: {:.0} MiB against {:.0} MiB for the normal corpus",
        mib(long.peak_rss),
        mib(normal.peak_rss)
    );
    assert!(long.peak_rss < 400 << 20, "{:.0} MiB", mib(long.peak_rss));
}

/// The documents as JSONL lines (serde_json's form), one per document.
fn jsonl_text(docs: &[&str]) -> String {
    docs.iter()
        .map(|d| {
            serde_json::json!({ "text": d, "meta": { "pile_set_name": "Pile-CC" } }).to_string()
                + "\n"
        })
        .collect()
}

/// `cooc` on a folder laid out as `monology/pile-uncopyrighted` (`train/00.jsonl.zst`,
/// `train/01.jsonl.zst`, `test.jsonl.zst`; `dataset_files = "train/"`) counts what it counts
/// on the same documents in one plain `.jsonl` file.
#[test]
fn cooc_on_zstd_jsonl_laid_out_as_the_pile_counts_as_on_plain_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let corpus = std::fs::read_to_string(&p.corpus).unwrap();
    let docs: Vec<&str> = corpus.lines().collect();
    // The first file ends well before the sixth batch, so the run reads across both files.
    let (first, second) = docs.split_at(docs.len() / 20);
    assert!(windows_once(&p.model, dir.path(), first) < 6 * 16);

    let plain = dir.path().join("plain.jsonl");
    std::fs::write(&plain, jsonl_text(&docs)).unwrap();
    let pile = dir.path().join("pile");
    std::fs::create_dir_all(pile.join("train")).unwrap();
    let zst = |docs: &[&str]| zstd::encode_all(jsonl_text(docs).as_bytes(), 3).unwrap();
    std::fs::write(pile.join("train/01.jsonl.zst"), zst(second)).unwrap();
    std::fs::write(pile.join("train/00.jsonl.zst"), zst(first)).unwrap();
    // Another split, first in path order, which `dataset_files` leaves out.
    std::fs::write(
        pile.join("test.jsonl.zst"),
        zst(&["not in the train split"; 500]),
    )
    .unwrap();

    let run = |name: &str, dataset: &Path, files: &str| -> std::path::PathBuf {
        let config = config_text(&p, 6, "").replace(
            &format!("dataset = \"{}\"", p.corpus.display()),
            &format!("dataset = \"{}\"\n{files}", dataset.display()),
        );
        let config_path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&config_path, config).unwrap();
        let results = dir.path().join(name);
        let out = saecooc(&["--quiet", "cooc", "--config"])
            .arg(&config_path)
            .arg("--results-dir")
            .arg(&results)
            .output()
            .unwrap();
        assert_ok(&out);
        common::results_dir(&results, 6)
    };
    let a = run("plain", &plain, "");
    let b = run("pile", &pile, "dataset_files = \"train/\"");
    let run_json = |d: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(d.join("run.json")).unwrap()).unwrap()
    };
    let (ra, rb) = (run_json(&a), run_json(&b));
    assert!(ra["tokens_counted"].as_u64().unwrap() > 0);
    assert_eq!(ra["tokens_counted"], rb["tokens_counted"]);
    assert_eq!(ra["windows_read"], rb["windows_read"]);
    assert_eq!(ra["data_exhausted"], false);
    let mut compared = 0;
    for file in common::files_under(&a) {
        if file.extension().is_some_and(|e| e == "npz") {
            let name = file.file_name().unwrap();
            let (x, y) = (read_npz(&file).unwrap(), read_npz(&b.join(name)).unwrap());
            assert!(!x.is_empty());
            assert_eq!(x, y, "{} differs", name.to_string_lossy());
            compared += 1;
        }
    }
    assert!(compared >= 9, "{compared} npz files");
}
