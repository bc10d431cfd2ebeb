print("sqopt-custom")
