// Placeholder so the target builds before its sources land; delete when adding real files.
