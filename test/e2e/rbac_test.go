//go:build e2e

package e2e

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// docBlock returns the text between the line that contains start and the next line
// that is exactly end, in a file of the repository.
func docBlock(t *testing.T, file, start, end string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), start)
	if !ok {
		t.Fatalf("%s: no %q", file, start)
	}
	_, rest, _ = strings.Cut(rest, "\n")
	block, _, ok := strings.Cut(rest, "\n"+end+"\n")
	if !ok {
		t.Fatalf("%s: %q is not closed by %q", file, start, end)
	}
	return block
}

// permissions are what `kubectl auth can-i --list` prints, as "resource[names]" -> verbs,
// leaving out what every authenticated user may do (the self-reviews, discovery URLs).
type permissions map[string][]string

func (p permissions) add(resource, names string, verbs ...string) {
	k := resource + names
	set := map[string]bool{}
	for _, v := range append(p[k], verbs...) {
		set[v] = true
	}
	p[k] = nil
	for v := range set {
		p[k] = append(p[k], v)
	}
	sort.Strings(p[k])
}

func (p permissions) String() string {
	var lines []string
	for k, v := range p {
		lines = append(lines, k+" "+strings.Join(v, ","))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

var everyUser = map[string]bool{"selfsubjectaccessreviews.authorization.k8s.io": true,
	"selfsubjectrulesreviews.authorization.k8s.io": true, "selfsubjectreviews.authentication.k8s.io": true}

// canI lists what subject may do in namespace ns.
func canI(t *testing.T, subject, ns string) permissions {
	t.Helper()
	out, err := kubectl(t, "auth", "can-i", "--list", "--as", subject, "-n", ns)
	if err != nil {
		t.Fatalf("kubectl auth can-i --list --as %s -n %s: %v\n%s", subject, ns, err, out)
	}
	cols := regexp.MustCompile(`\s{2,}`)
	p := permissions{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := cols.Split(strings.TrimSpace(line), -1)
		if len(f) != 4 || everyUser[f[0]] || f[1] != "[]" {
			continue // a discovery URL row, or what every user may do
		}
		names := ""
		if f[2] != "[]" {
			names = f[2]
		}
		p.add(f[0], names, strings.Fields(strings.Trim(f[3], "[]"))...)
	}
	return p
}

// rolePermissions are the rules of a Role in can-i's terms.
func rolePermissions(rules []rbacv1.PolicyRule) permissions {
	p := permissions{}
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				name := res
				if g != "" {
					name += "." + g
				}
				names := ""
				if len(r.ResourceNames) > 0 {
					names = "[" + strings.Join(r.ResourceNames, " ") + "]"
				}
				p.add(name, names, r.Verbs...)
			}
		}
	}
	return p
}

// TestLeastPrivilege: a configuration's ServiceAccount may do exactly what docs/rbac.md
// lists, in its namespace and nowhere else; and a user bound only to the namespaced Role
// the README documents (no cluster-wide rights) sets up a backup, runs it and restores.
func TestLeastPrivilege(t *testing.T) {
	t.Parallel()
	c := clientset(t)
	ns, other := namespace(t, c), namespace(t, c)
	fileRepository(t, c, ns)
	data := hostDir(t)
	writeTree(t, data, map[string]string{"menu.txt": "tea\ncoffee\n", "prices/tea.txt": "2.50\n"})
	boundClaim(t, c, ns, "shop", data, corev1.ReadWriteOnce, true)
	deployment(t, c, ns, "shop", "shop", "/source/data")

	// the user's Role, exactly as the README shows it, bound to the user jane
	role := docBlock(t, "../../README.md", "<!-- the namespaced user's Role (test/e2e/rbac_test.go applies it) -->", "```")
	role = strings.TrimPrefix(strings.TrimSpace(role), "```yaml")
	role = strings.ReplaceAll(role, "namespace: shop", "namespace: "+ns)
	if out, err := kubectlStdin(t, role, "apply", "-n", ns, "-f", "-"); err != nil {
		t.Fatalf("applying the README's Role: %v\n%s\n%s", err, out, role)
	}
	if out, err := kubectl(t, "create", "rolebinding", "jane", "--role", "stash-user", "--user", "jane", "-n", ns); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if p := canI(t, "jane", other); len(p) != 0 {
		t.Errorf("jane may do this outside her namespace:\n%s", p)
	}

	// everything as jane
	mustStash(t, ns, "backup", "deployment/shop", "--repo", "repo", "--paths", "/source/data", "--keep-last", "3", "--as", "jane")
	out := mustStash(t, ns, "trigger", "shop-backup", "--wait", "--as", "jane")
	session := sessionName(t, out)
	if s := readSession(t, ns, session); s.Status.Phase != "Succeeded" {
		t.Fatalf("session %s triggered by jane: %s %s", session, s.Status.Phase, hostErrors(s))
	}
	mustStash(t, ns, "get", "bs", "--as", "jane")
	mustStash(t, ns, "describe", "bs", session, "--as", "jane")
	if err := os.Remove(data + "/menu.txt"); err != nil {
		t.Fatal(err)
	}
	out = mustStash(t, ns, "restore", "deployment/shop", "--repo", "repo", "--from-config", "shop-backup", "--wait", "--as", "jane")
	if b, err := os.ReadFile(data + "/menu.txt"); err != nil || string(b) != "tea\ncoffee\n" {
		t.Fatalf("restore by jane did not bring menu.txt back (%v, %q):\n%s", err, b, out)
	}

	// the configuration's ServiceAccount: the rules docs/rbac.md shows, here and only here
	doc := docBlock(t, "../../docs/rbac.md", "$ kubectl -n docs-demo get role stash-shop-backup -o yaml", "")
	var documented rbacv1.Role
	if err := yaml.Unmarshal([]byte(doc), &documented); err != nil {
		t.Fatalf("the Role in docs/rbac.md: %v\n%s", err, doc)
	}
	sa := "system:serviceaccount:" + ns + ":stash-shop-backup"
	if got, want := canI(t, sa, ns), rolePermissions(documented.Rules); got.String() != want.String() {
		t.Errorf("%s may do:\n%s\n\ndocs/rbac.md lists:\n%s", sa, got, want)
	}
	if p := canI(t, sa, other); len(p) != 0 {
		t.Errorf("%s may do this in another namespace:\n%s", sa, p)
	}
}
