module github.com/tandemcall/tandem

go 1.26.8
