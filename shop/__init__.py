"""The store's data as the assistant sees it: orders, invoices, payments, refunds behind one interface."""
