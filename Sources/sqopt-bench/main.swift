print("sqopt-bench: not yet implemented")
