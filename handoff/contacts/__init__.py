"""One customer record across channels: identities, the contact page, privacy (export, erase, retention)."""
