//! Where and how SAE files are read: Fortran-ordered arrays written by numpy (a transposed
//! `W_enc = W_dec.T`, as `np.savez` stores it) load like their C-ordered copies, and
//! `[source] sae` may name the SAE's folder itself, the folder above it, or the weights file.

use crate::common::{
    assert_ok, check_python, config_text, files_under, fixture, read_json, results_dir, run_cooc,
};
use candle_core::{Device, Tensor};
use saecooc::hub::{Hub, Location};
use saecooc::io::npz::{read_f32_rows, read_npz, NpzWriter};
use saecooc::sae::{Sae, SaeDefaults, SaeFiles};
use saecooc::synth::SynthPaths;
use std::path::{Path, PathBuf};

fn load(path: &Path) -> Sae {
    let hub = Hub::from_env(false).unwrap();
    let files = SaeFiles::resolve(&Location::Local(path.to_path_buf()), "", &hub).unwrap();
    let defaults = SaeDefaults {
        hook_name: Some("blocks.0.hook_resid_post".into()),
        ..Default::default()
    };
    Sae::load(&files, &defaults, &Device::Cpu).unwrap()
}

fn rows(path: &Path) -> (Vec<usize>, Vec<Vec<f32>>) {
    let mut out = Vec::new();
    let shape = read_f32_rows(
        path,
        None,
        |_| Ok(()),
        |_, r| {
            out.push(r.to_vec());
            Ok(())
        },
    )
    .unwrap();
    (shape, out)
}

#[test]
fn fortran_ordered_numpy_arrays_load_like_c_ordered_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("fortran")).unwrap();
    std::fs::create_dir_all(d.join("c")).unwrap();
    check_python("write_both_orders.py", [d]);

    let (f, c) = (load(&d.join("fortran")), load(&d.join("c")));
    assert_eq!((f.cfg.d_in, f.cfg.d_sae), (6, 10));
    assert_eq!(f.w_dec, c.w_dec);
    assert_eq!(f.decoder_norms, c.decoder_norms);
    assert_eq!(f.threshold, c.threshold);
    let x: Vec<f32> = (0..8 * 6)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 4.0)
        .collect();
    let x = Tensor::from_slice(&x, (8, 6), &Device::Cpu).unwrap();
    let enc = |s: &Sae| {
        s.encode(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let (ef, ec) = (enc(&f), enc(&c));
    assert_eq!(ef, ec);
    assert!(ef.iter().any(|&v| v > 0.0), "some latent should fire");

    let (af, ac) = (
        read_npz(&d.join("arrays_f.npz")).unwrap(),
        read_npz(&d.join("arrays_c.npz")).unwrap(),
    );
    assert_eq!(af.len(), 11);
    for ((kf, a), (kc, b)) in af.iter().zip(&ac) {
        assert_eq!(kf, kc);
        assert_eq!(a, b, "array {kf}");
    }
    let (shape_f, rows_f) = rows(&d.join("matrix_f.npz"));
    assert_eq!(shape_f, vec![4, 7]);
    assert_eq!((shape_f, rows_f), rows(&d.join("matrix_c.npz")));
}

const SAE_ID: &str = "blocks.1.hook_resid_pre";

/// Runs `cooc` in `dir` with `[source] sae = sae`; returns the output and the results folder.
fn cooc_with_sae(dir: &Path, p: &SynthPaths, sae: &str) -> (std::process::Output, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let config = config_text(p, 2, "").replace(
        &format!("sae = \"{}\"", p.sae.parent().unwrap().display()),
        &format!("sae = \"{sae}\""),
    );
    assert!(config.contains(&format!("sae = \"{sae}\"")));
    let (out, results) = run_cooc(dir, &config);
    (out, results_dir(&results, 2))
}

fn run_json(d: &Path) -> serde_json::Value {
    read_json(&d.join("run.json"))
}

fn counts(d: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = files_under(d)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "npz"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 9, "{files:?}");
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

#[test]
fn source_sae_may_be_the_sae_folder_its_parent_or_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = fixture(d);
    let sae_dir = p.sae.clone();
    assert!(sae_dir.ends_with(SAE_ID) && sae_dir.join("cfg.json").is_file());
    let weights = sae_dir.join("sae_weights.safetensors");
    let parent = sae_dir.parent().unwrap().to_path_buf();

    // Today's form: the folder above `{sae_id}/`.
    let (out, reference) = cooc_with_sae(&d.join("parent"), &p, &parent.display().to_string());
    assert_ok(&out);
    let want = counts(&reference);
    assert_eq!(
        run_json(&reference)["sae"]["source"],
        weights.display().to_string()
    );
    let forms = [
        ("itself", sae_dir.display().to_string()),
        ("weights", weights.display().to_string()),
        ("cfg", sae_dir.join("cfg.json").display().to_string()),
        ("placeholder", format!("{}/{{sae_id}}", parent.display())),
    ];
    for (name, sae) in forms {
        let (out, folder) = cooc_with_sae(&d.join(name), &p, &sae);
        assert_ok(&out);
        assert_eq!(
            run_json(&folder)["sae"]["source"],
            weights.display().to_string(),
            "{name}"
        );
        assert!(counts(&folder) == want, "{name}: other counts");
    }

    // `{neat_sae_id}` and a direct params.npz path.
    let neat = d.join("neat").join("blocks_1_hook_resid_pre");
    std::fs::create_dir_all(&neat).unwrap();
    for f in ["cfg.json", "sae_weights.safetensors"] {
        std::fs::copy(sae_dir.join(f), neat.join(f)).unwrap();
    }
    let (out, folder) = cooc_with_sae(
        &d.join("neat_run"),
        &p,
        &format!("{}/{{neat_sae_id}}", d.join("neat").display()),
    );
    assert_ok(&out);
    assert!(counts(&folder) == want);

    let scope = d.join("scope");
    std::fs::create_dir_all(&scope).unwrap();
    let params = scope.join("my_sae.npz");
    let loaded = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    let mut npz = NpzWriter::create(&params, false).unwrap();
    for k in ["W_enc", "W_dec", "b_enc", "b_dec"] {
        let t = &loaded[k];
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        npz.add_array(k, t.dims(), &v).unwrap();
    }
    let d_sae = loaded["b_enc"].dims()[0];
    npz.add_array("threshold", &[d_sae], &vec![0f32; d_sae])
        .unwrap();
    npz.finish().unwrap();
    let (out, folder) = cooc_with_sae(&d.join("npz_run"), &p, &params.display().to_string());
    assert_ok(&out);
    let run = run_json(&folder);
    assert_eq!(run["sae"]["source"], params.display().to_string());
    assert_eq!(run["sae"]["architecture"], "JumpRelu");
}

#[test]
fn a_missing_sae_lists_every_path_tried() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = fixture(d);
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (out, _) = cooc_with_sae(&d.join("run"), &p, &empty.display().to_string());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let sub = empty.join(SAE_ID);
    assert!(
        err.contains(&format!("{} (does not exist)", sub.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("{} (has neither cfg.json", empty.display())),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // A path that does not exist at all: both candidates are named.
    let nowhere = d.join("nowhere");
    let (out, _) = cooc_with_sae(&d.join("run2"), &p, &nowhere.display().to_string());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{} (does not exist)",
            nowhere.join(SAE_ID).display()
        )) && err.contains(&format!("{} (does not exist)", nowhere.display())),
        "{err}"
    );

    // A file that is no SAE file.
    let (out, _) = cooc_with_sae(&d.join("run3"), &p, &p.corpus.display().to_string());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not an SAE file"), "{err}");
}
