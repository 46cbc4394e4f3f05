"""RAG chatbot over one Chinese article."""
