"""One customer record across channels: identities, search, the contact page, privacy (export, erase, retention) and the audit trail."""
