print("sqopt")
