"""Chapter 2: word embeddings — Word2Vec, GloVe and FastText from NumPy to PyTorch.

- ``checks``          argument checks and the divergence check shared by the trainers
- ``config``          typed configs with gensim's parameter names
- ``vocab``           tokenisation, vocabulary, sub-sampling, negative-sampling table
- ``pairs``           skip-gram pairs / CBOW windows for a whole epoch, vectorised
- ``word2vec_numpy``  SGNS with hand-derived gradients
- ``word2vec_torch``  fast batched skip-gram and CBOW (CPU/GPU)
- ``glove``           co-occurrence counts, weighted least squares, AdaGrad
- ``fasttext``        character n-grams, gensim's hash, subword training, OOV vectors
- ``evaluate``        word-pair similarity and analogy evaluation equal to gensim's
"""
from .config import FastTextConfig, GloVeConfig, Word2VecConfig
from .vectors import WordVectors
from .vocab import Vocab, tokenize, wikitext_sentences

__all__ = ["Word2VecConfig", "FastTextConfig", "GloVeConfig", "WordVectors", "Vocab",
           "tokenize", "wikitext_sentences"]
