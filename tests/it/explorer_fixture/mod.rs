//! A wide SAE's results, written directly in the real formats (node table CSV, scipy CSR
//! thresholded matrix, `pca` h5 files through the crate's own writer) so that the explorer can
//! be tried at the sizes where it used to break: subgraphs of 2 to 25 latents, five-digit latent
//! ids, contexts longer than a panel, PCA points drawn on top of one another, and as many
//! subgraphs and points as a real run has.
#![allow(dead_code)]

pub mod browser;

use saecooc::config::SaveOptions;
use saecooc::results::h5::{h5_file_name, write_split, SubgraphOutput};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What to write.
pub struct WideSpec {
    /// `(size, count)`: subgraphs in the node table (singletons are added on top).
    pub subgraphs: Vec<(usize, usize)>,
    /// `(size, count)`: how many subgraphs of each size get PCA (the first ones of that size).
    pub pca: Vec<(usize, usize)>,
    /// The example cap: each subgraph with PCA gets between half of it and all of it.
    pub cap: usize,
    /// `n_batches` of the pca run (in the h5 file names).
    pub n_batches: usize,
    pub seed: u64,
}

/// What was written, for the assertions.
pub struct WideResults {
    pub root: PathBuf,
    pub dir: PathBuf,
    pub pca_dir: PathBuf,
    /// `(size, subgraph id, points)` of every subgraph with PCA.
    pub pca: Vec<(usize, i64, usize)>,
    /// Every subgraph of two or more latents.
    pub table: Vec<(i64, usize)>,
}

pub const MODEL: &str = "synthetic-gpt2";
pub const RELEASE: &str = "synthetic";
pub const SAE: &str = "blocks_1_hook_resid_pre";

/// A small deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const WORDS: [&str; 12] = [
    " the",
    " president",
    " river",
    " of",
    " and",
    " quantum",
    " Paris",
    " running",
    " data",
    " in",
    " model",
    " said",
];

/// A context of 10 tokens, `|token|`, 10 tokens, as `pca` writes them; every 7th is long
/// enough to need several lines.
fn context(rng: &mut Rng, token: &str, i: usize) -> String {
    let mut words = |n: usize| -> String {
        (0..n)
            .map(|_| WORDS[rng.below(WORDS.len())])
            .collect::<String>()
    };
    let (before, after) = if i.is_multiple_of(7) {
        (
            words(10) + " an_unusually_long_word_without_any_spaces_in_it_at_all",
            words(10) + &" and the sentence goes on".repeat(6),
        )
    } else {
        (words(10), words(10))
    };
    format!("{before}|{token}|{after}")
}

fn latent_id(index: usize) -> u32 {
    10_000 + 7 * index as u32
}

/// The node table: one row per latent, scores per subgraph, Python list reprs of top tokens.
fn node_table(groups: &[(i64, Vec<u32>)], rng: &mut Rng) -> String {
    let mut csv = String::from(
        "node_id,activity_threshold,subgraph_id,subgraph_size,feature_activations,top_10_tokens,neuronpedia_link,hub_spoke_score,strongly_connected_score,linear_score\n",
    );
    for (sid, latents) in groups {
        let scores = [rng.unit(), rng.unit(), rng.unit()];
        for &id in latents {
            let tops: Vec<String> = (0..10).map(|j| format!("'w{id}_{j}'")).collect();
            writeln!(
                csv,
                "{id},1.5,{sid},{},{}.0,\"[{}]\",,{},{},{}",
                latents.len(),
                100 + rng.below(5000),
                tops.join(", "),
                scores[0],
                scores[1],
                scores[2]
            )
            .unwrap();
        }
    }
    csv
}

/// Edges within each subgraph: a chain plus a few random chords, symmetric.
fn edges(groups: &[(i64, Vec<u32>)], rng: &mut Rng) -> Vec<(u32, u32, f32)> {
    let mut entries = BTreeMap::new();
    for (_, latents) in groups.iter().filter(|(_, l)| l.len() > 1) {
        let mut add = |a: u32, b: u32, w: f32| {
            entries.insert((a, b), w);
            entries.insert((b, a), w);
        };
        for pair in latents.windows(2) {
            add(pair[0], pair[1], 0.1 + 0.8 * rng.unit());
        }
        for _ in 0..latents.len() / 2 {
            let (a, b) = (rng.below(latents.len()), rng.below(latents.len()));
            if a != b {
                add(latents[a], latents[b], 0.1 + 0.8 * rng.unit());
            }
        }
    }
    entries.into_iter().map(|((a, b), w)| (a, b, w)).collect()
}

/// One subgraph's PCA output with `n` points; points 1..=5 sit exactly on point 0.
fn pca_output(sid: i64, latents: &[u32], n: usize, rng: &mut Rng) -> SubgraphOutput {
    let f = latents.len();
    let mut out = SubgraphOutput {
        subgraph_id: sid,
        tokens: Vec::with_capacity(n),
        contexts: Vec::with_capacity(n),
        batches: Vec::with_capacity(n),
        positions: Vec::with_capacity(n),
        n_latents: f,
        reconstructions: Vec::new(),
        graph_acts: Vec::with_capacity(n * f),
        feature_acts: Vec::new(),
        max_info: Vec::with_capacity(n),
        top_3_tokens: vec![
            (WORDS[sid as usize % 12].to_string(), 30),
            (WORDS[(sid as usize + 1) % 12].to_string(), 20),
            (WORDS[(sid as usize + 2) % 12].to_string(), 10),
        ],
        example_context: String::new(),
        pca_scores: Vec::with_capacity(n * 3),
    };
    for i in 0..n {
        let token = WORDS[rng.below(WORDS.len())].to_string();
        out.contexts.push(context(rng, &token, i));
        out.tokens.push(token);
        out.batches.push(i as i64 / 16);
        out.positions.push(i as i64 % 16);
        let acts: Vec<f32> = (0..f)
            .map(|_| {
                if rng.unit() < 0.4 {
                    5.0 * rng.unit()
                } else {
                    0.0
                }
            })
            .collect();
        let (k, &top) = acts
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap();
        let inside = top > 0.0;
        out.max_info.push([
            top.max(1.0),
            if inside { latents[k] as f32 } else { 3.0 },
            inside as u8 as f32,
        ]);
        out.graph_acts.extend(&acts);
        let pc = if (1..=5).contains(&i) {
            [out.pca_scores[0], out.pca_scores[1], out.pca_scores[2]]
        } else {
            [
                rng.unit() * 4.0 - 2.0,
                rng.unit() * 4.0 - 2.0,
                rng.unit() * 4.0 - 2.0,
            ]
        };
        out.pca_scores.extend(pc);
    }
    out.example_context = out.contexts[0].clone();
    out
}

fn save_options() -> SaveOptions {
    SaveOptions {
        examples_found: true,
        ..SaveOptions::default()
    }
}

/// The SAE results folder under `root`.
pub fn sae_dir(root: &Path) -> PathBuf {
    root.join(MODEL).join(RELEASE).join(SAE).join("n_batches_8")
}

/// The subgraphs of `spec` with their latents, then 20 singletons; ids in order.
fn groups(spec: &WideSpec) -> Vec<(i64, Vec<u32>)> {
    let mut groups: Vec<(i64, Vec<u32>)> = Vec::new();
    let mut next_latent = 0;
    let sizes = spec
        .subgraphs
        .iter()
        .flat_map(|&(size, count)| std::iter::repeat_n(size, count))
        .chain(std::iter::repeat_n(1, 20));
    for size in sizes {
        let latents = (next_latent..next_latent + size).map(latent_id).collect();
        next_latent += size;
        groups.push((groups.len() as i64, latents));
    }
    groups
}

/// Writes another `pca` run of `spec` (its own `cap` and `n_batches`) beside those in `root`.
pub fn write_another_run(root: &Path, spec: &WideSpec) -> Vec<(usize, i64, usize)> {
    let pca_dir = sae_dir(root).join(format!("{SAE}_pca_for_streamlit"));
    write_pca_run(&pca_dir, &groups(spec), spec, &mut Rng::new(spec.seed + 1))
}

/// Writes the node table and thresholded matrix (the `graphs` outputs) and one `pca` run.
pub fn write_wide(root: &Path, spec: &WideSpec) -> WideResults {
    let mut rng = Rng::new(spec.seed);
    let dir = sae_dir(root);
    let groups = groups(spec);
    let next_latent: usize = groups.iter().map(|(_, l)| l.len()).sum();
    std::fs::create_dir_all(dir.join("dataframes")).unwrap();
    std::fs::write(
        dir.join("dataframes/node_info_df_1_5.csv"),
        node_table(&groups, &mut rng),
    )
    .unwrap();
    let matrices = dir.join("thresholded_matrices");
    std::fs::create_dir_all(&matrices).unwrap();
    saecooc::io::csr::save_csr(
        &matrices.join("sparse_thresholded_matrix_1_5.npz"),
        latent_id(next_latent) as usize,
        &edges(&groups, &mut rng),
    )
    .unwrap();
    let pca_dir = dir.join(format!("{SAE}_pca_for_streamlit"));
    let pca = write_pca_run(&pca_dir, &groups, spec, &mut rng);
    WideResults {
        root: root.to_path_buf(),
        dir,
        pca_dir,
        pca,
        table: groups
            .iter()
            .filter(|(_, l)| l.len() > 1)
            .map(|(sid, l)| (*sid, l.len()))
            .collect(),
    }
}

/// One h5 file per size in `spec.pca`; returns `(size, id, points)` of what was written.
fn write_pca_run(
    pca_dir: &Path,
    groups: &[(i64, Vec<u32>)],
    spec: &WideSpec,
    rng: &mut Rng,
) -> Vec<(usize, i64, usize)> {
    let mut written = Vec::new();
    for &(size, count) in &spec.pca {
        let outputs: Vec<SubgraphOutput> = groups
            .iter()
            .filter(|(_, l)| l.len() == size)
            .take(count)
            .map(|(sid, latents)| {
                let n = spec.cap / 2 + rng.below(spec.cap / 2 + 1);
                pca_output(*sid, latents, n.max(8), rng)
            })
            .collect();
        written.extend(
            outputs
                .iter()
                .map(|o| (size, o.subgraph_id, o.tokens.len())),
        );
        let path = pca_dir.join(h5_file_name(Some(spec.cap), size, spec.n_batches));
        write_split(&path, &outputs, &save_options(), 4, 1, None).unwrap();
        move_to_fresh_inode(&path);
    }
    written
}

/// Copies `path` onto a new inode in its place. HDF5 opens files without close-on-exec and
/// holds a `flock` on them while open; a child process that another test of this binary spawns
/// meanwhile (a server, a browser) inherits that descriptor and keeps the lock after this
/// process closed the file, so a later `saecooc export` could not open it ("unable to lock
/// file, errno = 11"). The copy carries no lock.
fn move_to_fresh_inode(path: &Path) {
    let copy = path.with_extension("h5.copy");
    std::fs::copy(path, &copy).unwrap();
    std::fs::rename(&copy, path).unwrap();
}
