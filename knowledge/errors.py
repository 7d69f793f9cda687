"""Domain errors of the knowledge base; each message names the file or setting to fix."""

from __future__ import annotations


class KnowledgeError(Exception):
    """Base class: something about the knowledge base or its index needs a person's attention."""


class ArticleFormatError(KnowledgeError, ValueError):
    """An article file cannot be read; the message names the file and what is wrong."""


class DuplicateArticle(ArticleFormatError):
    """Two files claim the same article id in the same language."""


class EmptyArticle(ArticleFormatError):
    """An article has front matter but no text to answer with."""


class ModelLoadError(KnowledgeError):
    """The embedding model named by SUPPORT_KB_MODEL (or --model) cannot be loaded."""


class IndexMissing(KnowledgeError):
    """No index has been built at the given location yet."""


class IndexCorrupt(KnowledgeError):
    """An index directory exists but its files are unreadable or inconsistent."""


class IndexModelMismatch(KnowledgeError):
    """The index was built with another embedding model than the one configured."""


class ImportFormatError(KnowledgeError, ValueError):
    """A foreign FAQ file (CSV or JSON Lines) cannot be imported; names the file and row."""
