print("sqopt-fuzz: build with tools/fuzz.sh")
