"""The store's knowledge base: Markdown articles and how the assistant finds the right one."""
