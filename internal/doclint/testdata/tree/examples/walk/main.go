package main

func Exported() {} // a program's identifiers need no doc comment

func main() {}
