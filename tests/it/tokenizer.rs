//! The bundled GPT-2 tokenizer gives GPT-2's ids (values from OpenAI's encoder).

use saecooc::tokenizer::{encode_documents, gpt2_bpe};

#[test]
fn gpt2_vocab_and_merges_give_gpt2_ids() {
    let dir = tempfile::tempdir().unwrap();
    saecooc::synth::write_gpt2_tokenizer(dir.path()).unwrap();
    let tok = gpt2_bpe(
        &dir.path().join("vocab.json"),
        &dir.path().join("merges.txt"),
    )
    .unwrap();
    assert_eq!(tok.get_vocab_size(true), 50257);
    assert_eq!(tok.token_to_id("<|endoftext|>"), Some(50256));
    let ids = encode_documents(
        &tok,
        vec!["Hello world".into(), "Hello world<|endoftext|>Hello".into()],
    )
    .unwrap();
    assert_eq!(ids[0], vec![15496, 995]);
    assert_eq!(ids[1], vec![15496, 995, 50256, 15496]);
    assert_eq!(tok.decode(&[15496, 995], false).unwrap(), "Hello world");
}

/// Writes a GGUF holding only a byte-level tokenizer: the 256 byte symbols, then `Ġ.` and
/// `Ġ..."` (the spacing that differed in the demo's top tokens).
fn write_tokenizer_gguf(path: &std::path::Path) -> (u32, u32) {
    use candle_core::quantized::gguf_file::{self, Value};
    let mut tokens: Vec<String> = tokenizers::pre_tokenizers::byte_level::ByteLevel::alphabet()
        .into_iter()
        .map(String::from)
        .collect();
    tokens.sort();
    let (dot, ellipsis) = (tokens.len() as u32, tokens.len() as u32 + 1);
    tokens.extend(["Ġ.".to_string(), "Ġ...\"".to_string()]);
    let types = vec![Value::I32(1); tokens.len()];
    let strings = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect());
    let metadata: Vec<(&str, Value)> = vec![
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.tokens", strings(tokens)),
        ("tokenizer.ggml.merges", strings(vec!["Ġ .".into()])),
        ("tokenizer.ggml.token_type", Value::Array(types)),
    ];
    let meta: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let no_tensors: [(&str, &candle_core::quantized::QTensor); 0] = [];
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &meta, &no_tensors).unwrap();
    (dot, ellipsis)
}

/// Single tokens decode with the clean-up setting of the tokenizer transformers builds from
/// the same files: on for GPT-2's vocab + merges alone (the default of the transformers
/// releases the original ran on), whatever a `tokenizer_config.json` beside them says, and off
/// for a GGUF file (transformers builds that tokenizer from the GGUF metadata alone, reading no
/// `tokenizer_config.json`, so one saying true beside it changes nothing).
#[test]
fn token_decoder_cleans_up_spaces_as_the_tokenizer_does() {
    use saecooc::hub::{Hub, Location};
    use saecooc::tokenizer::TokenDecoder;
    let hub = Hub::from_env(false).unwrap();
    let config = |dir: &std::path::Path, value: bool| {
        std::fs::write(
            dir.join("tokenizer_config.json"),
            format!("{{\"clean_up_tokenization_spaces\": {value}}}"),
        )
        .unwrap()
    };

    // GPT-2: 764 is "Ġ.", 35713 is "Ġ...\"".
    let gpt2 = tempfile::tempdir().unwrap();
    saecooc::synth::write_gpt2_tokenizer(gpt2.path()).unwrap();
    let load = |loc: &std::path::Path| TokenDecoder::load(&Location::Local(loc.into()), &hub);
    let dec = load(gpt2.path()).unwrap();
    assert!(dec.clean_up_spaces);
    assert_eq!(dec.decode_one(764).unwrap(), ".");
    assert_eq!(dec.decode_one(35713).unwrap(), "...\"");
    config(gpt2.path(), false);
    let dec = load(gpt2.path()).unwrap();
    assert!(!dec.clean_up_spaces);
    assert_eq!(dec.decode_one(764).unwrap(), " .");
    assert_eq!(dec.decode_one(35713).unwrap(), " ...\"");
    config(gpt2.path(), true);
    assert_eq!(load(gpt2.path()).unwrap().decode_one(764).unwrap(), ".");

    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("tokenizer-only.gguf");
    let (dot, ellipsis) = write_tokenizer_gguf(&gguf);
    config(dir.path(), true);
    let dec = load(&gguf).unwrap();
    assert!(!dec.clean_up_spaces);
    assert_eq!(dec.decode_one(dot).unwrap(), " .");
    assert_eq!(dec.decode_one(ellipsis).unwrap(), " ...\"");
}
