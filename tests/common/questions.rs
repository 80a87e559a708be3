//! Question-answering examples made from real CoLA sentences for the tests: a context of five
//! consecutive sentences, the question one of them, the answer that sentence in the context.

use bert_finetune::data::cola::{Cola, Split};
use bert_finetune::data::squad::{Answer, QaExample};

/// `n` examples starting at sentence `skip`.
pub fn examples(n: usize, skip: usize) -> Vec<QaExample> {
    let cola =
        Cola::load_split(bert_finetune::runtime::settings::cola_dir(), Split::Train).unwrap();
    let sentences = cola.sentences();
    (0..n)
        .map(|i| {
            let first = skip + i * 7;
            let parts = &sentences[first..first + 5];
            let k = (i * 3) % 5;
            let start: usize = parts[..k].iter().map(|s| s.chars().count() + 1).sum();
            QaExample {
                id: format!("q{i}"),
                question: parts[k].clone(),
                context: parts.join(" "),
                answers: vec![Answer {
                    text: parts[k].clone(),
                    start,
                }],
            }
        })
        .collect()
}
