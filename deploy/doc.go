// Package deploy holds deployment files; its test checks them.
package deploy
