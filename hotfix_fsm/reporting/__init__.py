"""What people read: status and log documents, the evidence checklist, the post-mortem."""
