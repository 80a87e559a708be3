//! Token-classification data made from real CoLA sentences for the tagging tests: person
//! names are `B-PER`; "the", "a", "an" start a `DET` entity that the next word continues.

use bert_finetune::data::cola::{Cola, Split};

pub const TAGS: [&str; 4] = ["O", "B-PER", "B-DET", "I-DET"];
const NAMES: [&str; 12] = [
    "john", "mary", "bill", "sue", "fred", "kim", "sandy", "pat", "chris", "tom", "jane", "sarah",
];

/// Words of CoLA sentences with their tags: a name is `B-PER`; "the"/"a"/"an" starts a
/// `DET` entity and the word after it (when not a name) continues it.
pub fn tagged(n: usize, skip: usize) -> (Vec<Vec<String>>, Vec<Vec<i64>>) {
    let cola =
        Cola::load_split(bert_finetune::runtime::settings::cola_dir(), Split::Train).unwrap();
    let id = |t: &str| TAGS.iter().position(|x| *x == t).unwrap() as i64;
    let mut words_out = Vec::new();
    let mut tags_out = Vec::new();
    for sentence in cola.sentences().iter().skip(skip).step_by(3).take(n) {
        let words: Vec<String> = sentence.split_whitespace().map(str::to_string).collect();
        let bare = |w: &str| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        };
        let mut tags = Vec::with_capacity(words.len());
        for (i, w) in words.iter().enumerate() {
            let b = bare(w);
            let previous = i.checked_sub(1).map(|j| bare(&words[j]));
            tags.push(if NAMES.contains(&b.as_str()) {
                id("B-PER")
            } else if ["the", "a", "an"].contains(&b.as_str()) {
                id("B-DET")
            } else if previous.is_some_and(|p| ["the", "a", "an"].contains(&p.as_str())) {
                id("I-DET")
            } else {
                id("O")
            });
        }
        words_out.push(words);
        tags_out.push(tags);
    }
    (words_out, tags_out)
}
