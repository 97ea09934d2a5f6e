//! The bundled GPT-2 tokenizer gives GPT-2's ids (values from OpenAI's encoder).

use saecooc::data::{encode_documents, gpt2_bpe};

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
