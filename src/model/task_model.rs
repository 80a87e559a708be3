//! [`TaskModel`]: what the `Trainer` and the evaluation ask of a model with a task head, so one
//! training loop drives every head. Each head says which problem type its loss and metrics
//! follow and gives logits for a batch; the loss itself is [`heads::weighted_loss`] of that
//! problem type.
//!
//! [`heads::weighted_loss`]: super::heads::weighted_loss

use anyhow::Result;
use tch::Tensor;

use super::checkpoint::BertCheckpoint;
use super::classifier::BertForSequenceClassification;
use super::masked_lm::BertForMaskedLM;
use super::question_answering::BertForQuestionAnswering;
use super::token_classifier::BertForTokenClassification;
use crate::data::tokenizer::Encoded;
use crate::data::Batch;
use crate::data::ProblemType;

/// A BERT with a task head that the `Trainer` can train and evaluate.
pub trait TaskModel: BertCheckpoint {
    /// The problem type of its loss and metrics.
    fn problem_type(&self) -> Result<ProblemType>;
    /// Logits for an encoded batch, moved to the model's device; dropout on with `train`.
    fn batch_logits(&self, inputs: &Encoded, train: bool) -> Tensor;
    /// The logits the loss reads and their labels, for a batch on the model's device: by
    /// default [`batch_logits`](Self::batch_logits) and the batch's labels as they are; a head
    /// may leave out the positions its loss ignores (the masked-LM head does).
    fn scored_logits(&self, batch: &Batch, train: bool) -> (Tensor, Tensor) {
        (
            self.batch_logits(&batch.inputs, train),
            batch.labels.shallow_clone(),
        )
    }
    /// Parameters in module order with Hugging Face names.
    fn parameters(&self) -> Vec<(String, Tensor)> {
        super::checkpoint::named_parameters_of(self.var_store())
    }
    /// The name of each output (class or tag), by id.
    fn label_names(&self) -> Vec<String> {
        let config = self.bert_config();
        (0..config.num_labels())
            .map(|i| config.label_name(i))
            .collect()
    }
}

impl TaskModel for BertForSequenceClassification {
    /// From `config.json` (`problem_type`, else by the number of outputs, as transformers).
    fn problem_type(&self) -> Result<ProblemType> {
        self.config.problem_type()
    }

    fn batch_logits(&self, inputs: &Encoded, train: bool) -> Tensor {
        self.logits(inputs, train)
    }
}

impl TaskModel for BertForTokenClassification {
    fn problem_type(&self) -> Result<ProblemType> {
        Ok(ProblemType::TokenClassification)
    }

    fn batch_logits(&self, inputs: &Encoded, train: bool) -> Tensor {
        self.logits(inputs, train)
    }
}

impl TaskModel for BertForQuestionAnswering {
    fn problem_type(&self) -> Result<ProblemType> {
        Ok(ProblemType::QuestionAnswering)
    }

    /// Start and end logits stacked, `[batch, seq, 2]` (see [`super::heads::span_logits`]).
    fn batch_logits(&self, inputs: &Encoded, train: bool) -> Tensor {
        let (start, end) = self.logits(inputs, train);
        Tensor::stack(&[start, end], -1)
    }
}

impl TaskModel for BertForMaskedLM {
    fn problem_type(&self) -> Result<ProblemType> {
        Ok(ProblemType::MaskedLanguageModeling)
    }

    /// Vocabulary logits `[batch, seq, vocab]`.
    fn batch_logits(&self, inputs: &Encoded, train: bool) -> Tensor {
        self.logits(inputs, train)
    }

    /// `[m, vocab]` at the `m` masked positions only (see [`BertForMaskedLM::masked_logits`]).
    fn scored_logits(&self, batch: &Batch, train: bool) -> (Tensor, Tensor) {
        self.masked_logits(&batch.inputs, &batch.labels, batch.labelled.as_ref(), train)
    }

    /// The vocabulary is not a set of named labels.
    fn label_names(&self) -> Vec<String> {
        Vec::new()
    }
}
