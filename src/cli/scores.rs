//! How the CLI prints a scored set: the headline figures of its problem type, then the
//! per-class table for classifiers.

use bert_finetune::data::ProblemType;
use bert_finetune::eval::Evaluation;

/// The test figures as a user reads them after `train --test-file`.
pub fn report(scored: &Evaluation, label_names: &[String]) -> String {
    let m = scored.metrics();
    let get = |k: &str| m.get(k).copied().unwrap_or(f64::NAN);
    let mut out = match scored.problem_type {
        ProblemType::SingleLabelClassification => format!(
            "Accuracy: {:.3}\nMacro F1: {:.3}\nMCC: {:.3}\n",
            get("accuracy"),
            get("macro_f1"),
            get("mcc")
        ),
        ProblemType::Regression => format!(
            "MSE: {:.4}\nPearson: {:.3}\nSpearman: {:.3}\n",
            get("mse"),
            get("pearson"),
            get("spearmanr")
        ),
        ProblemType::MultiLabelClassification => format!(
            "Micro F1: {:.3}\nMacro F1: {:.3}\nSubset accuracy: {:.3}\n",
            get("micro_f1"),
            get("macro_f1"),
            get("subset_accuracy")
        ),
        ProblemType::QuestionAnswering => format!("Span accuracy: {:.3}\n", get("span_accuracy")),
        ProblemType::MaskedLanguageModeling => format!(
            "Perplexity: {:.2}\nMasked-token accuracy: {:.3}\n",
            get("perplexity"),
            get("accuracy")
        ),
        ProblemType::TokenClassification => format!(
            "Entity F1: {:.3}\nPrecision: {:.3}\nRecall: {:.3}\nToken accuracy: {:.3}\n",
            get("f1"),
            get("precision"),
            get("recall"),
            get("accuracy")
        ),
    };
    if let Some(table) = scored.class_report(label_names) {
        out += &format!("{table}\n");
    }
    out
}
