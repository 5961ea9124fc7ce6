"""Chapter 1: classical baselines for the eight task families — the bar later chapters must beat.

Modules
-------
ngram
    word n-gram language model, interpolated Kneser-Ney or add-k (NumPy), open-vocabulary scoring.
keywords
    TF-IDF keywords per document and per topic; overlap with headlines.
sentiment
    a hand-written polarity lexicon with negation; multinomial naive Bayes (bag of words).
translation
    word-by-word Chinese -> English with jieba + CC-CEDICT; BLEU and chrF with sacrebleu.
retrieval
    BM25 (equal to rank_bm25) over BBC News paragraphs; a 30-question QA set; accuracy@k, MRR.
summarization
    lead-k, TextRank (PageRank on a TF-IDF similarity graph); ROUGE-1/2/L.
results
    the later chapters' recorded scores, read from their result files.

Text classification (TF-IDF + logistic regression) and NER (a gazetteer) reuse
``course_lib.finetuning.baselines.tfidf_logreg`` and ``course_lib.finetuning.ner.GazetteerBaseline``.
"""
from . import keywords, ngram, results, retrieval, sentiment, summarization, translation
from .ngram import NGramConfig, NGramLM, lines_to_sentences
from .retrieval import BM25, QA_SET

__all__ = ["keywords", "ngram", "results", "retrieval", "sentiment", "summarization", "translation",
           "NGramConfig", "NGramLM", "lines_to_sentences", "BM25", "QA_SET"]
