package jobs

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	klabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// FeedOptions choose what a session feed watches.
type FeedOptions struct {
	// Namespace to watch; "" is every namespace.
	Namespace string
	// Config keeps the backup sessions of one configuration and the restore session of
	// that name (a restore session belongs to no configuration: its name is what picks
	// it); "" keeps all.
	Config string
	// Kind keeps one kind of session (backup or restore); "" keeps all.
	Kind api.SessionKind
	// Limit keeps the newest sessions only (default 200): a namespace with a long history
	// stays quick to draw.
	Limit int
	// Settle is how long the feed waits after a change for more before it sends a picture
	// (default 50ms): a session that creates 100 host Jobs is one redraw, not 100, and an
	// annotation change still reaches the screen well within a second.
	Settle time.Duration
}

// feedKind is how the Jobs of one kind of session are told apart: the components of its
// session and host Jobs, the label that names a session on its host Jobs, and the label
// FeedOptions.Config selects by.
type feedKind struct {
	kind                   api.SessionKind
	session, host          string
	sessionLabel, byConfig string
}

// feedKinds are the kinds of session the feed knows, in the order it watches them.
var feedKinds = []feedKind{
	{api.KindBackup, api.ComponentSession, api.ComponentHost, api.LabelBackupSession, api.LabelBackupConfiguration},
	{api.KindRestore, api.ComponentRestoreSession, api.ComponentRestoreHost, api.LabelRestoreSession, api.LabelRestoreSession},
	// a verification session has no host Jobs: its one pod does the work
	{api.KindVerify, api.ComponentVerifySession, api.ComponentVerifySession, api.LabelVerification, api.LabelVerification},
}

// feedSelectors are the label selectors of the Jobs o watches, one informer each. Without
// Config one selector takes the session and host Jobs of every kind o keeps; with Config
// each kind selects its own way (a configuration's sessions, a restore session by name),
// which one selector cannot say. A kind the feed does not know (verify) selects nothing.
func feedSelectors(o FeedOptions) ([]klabels.Selector, error) {
	var kinds []feedKind
	for _, k := range feedKinds {
		if o.Kind == "" || o.Kind == k.kind {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		return nil, nil
	}
	components := func(ks ...feedKind) (klabels.Selector, error) {
		var values []string
		for _, k := range ks {
			values = append(values, k.session, k.host)
		}
		req, err := klabels.NewRequirement(api.LabelComponent, selection.In, values)
		if err != nil {
			return nil, err
		}
		return klabels.NewSelector().Add(*req), nil
	}
	if o.Config == "" {
		sel, err := components(kinds...)
		if err != nil {
			return nil, err
		}
		return []klabels.Selector{sel}, nil
	}
	var sels []klabels.Selector
	for _, k := range kinds {
		sel, err := components(k)
		if err != nil {
			return nil, err
		}
		r, err := klabels.NewRequirement(k.byConfig, selection.Equals, []string{o.Config})
		if err != nil {
			return nil, fmt.Errorf("configuration or session %q: %w", o.Config, err)
		}
		sels = append(sels, sel.Add(*r))
	}
	return sels, nil
}

// WatchSessions watches session and host Jobs with informers (one list, then a watch:
// no polling) and sends a complete picture after every change, until ctx ends; then it
// closes the channel. Slow consumers see only the latest picture.
func WatchSessions(ctx context.Context, c kubernetes.Interface, o FeedOptions) (api.SessionFeed, error) {
	if o.Limit <= 0 {
		o.Limit = 200
	}
	if o.Settle <= 0 {
		o.Settle = 50 * time.Millisecond
	}
	sels, err := feedSelectors(o)
	if err != nil {
		return nil, err
	}
	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	var factories []informers.SharedInformerFactory
	var stores []cache.Store
	shutdown := func() {
		for _, f := range factories {
			f.Shutdown()
		}
	}
	for _, sel := range sels {
		factory := informers.NewSharedInformerFactoryWithOptions(c, 0, informers.WithNamespace(o.Namespace),
			informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = sel.String() }))
		inf := factory.Batch().V1().Jobs().Informer()
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { poke() },
			UpdateFunc: func(any, any) { poke() },
			DeleteFunc: func(any) { poke() },
		}); err != nil {
			shutdown()
			return nil, err
		}
		factories = append(factories, factory)
		stores = append(stores, inf.GetStore())
		factory.Start(ctx.Done())
	}
	for _, f := range factories {
		for _, ok := range f.WaitForCacheSync(ctx.Done()) {
			if !ok {
				shutdown()
				return nil, fmt.Errorf("watch jobs in %s: %w", nsName(o.Namespace), errOr(ctx.Err(), "the cache did not sync"))
			}
		}
	}
	out := make(chan []api.SessionView, 1)
	go func() {
		defer close(out)
		defer shutdown()
		send := func() {
			var objs []any
			for _, s := range stores {
				objs = append(objs, s.List()...)
			}
			pic := picture(objs, o)
			select { // replace a picture the consumer has not taken yet
			case <-out:
			default:
			}
			out <- pic
		}
		send()
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(o.Settle):
			}
			send()
		}
	}()
	return out, nil
}

// picture joins session Jobs with their host Jobs.
func picture(objs []any, o FeedOptions) []api.SessionView {
	type session struct {
		kind feedKind
		job  *batchv1.Job
	}
	var sessions []session
	hosts := map[string][]api.HostStatus{} // by kind, namespace and session
	hostKey := func(k feedKind, ns, name string) string { return string(k.kind) + ":" + hostsKey(ns, name) }
	for _, obj := range objs {
		j, ok := obj.(*batchv1.Job)
		if !ok {
			continue
		}
		for _, k := range feedKinds {
			if o.Kind != "" && o.Kind != k.kind {
				continue
			}
			switch j.Labels[api.LabelComponent] {
			case k.session:
				sessions = append(sessions, session{k, j})
			case k.host:
				key := hostKey(k, j.Namespace, j.Labels[k.sessionLabel])
				hosts[key] = append(hosts[key], hostStatusOf(j))
			}
		}
	}
	views := make([]api.SessionView, 0, len(sessions))
	for _, s := range sessions {
		j := s.job
		hs := hosts[hostKey(s.kind, j.Namespace, j.Name)]
		sortHosts(hs)
		v := api.SessionView{Kind: s.kind.kind, Namespace: j.Namespace, Name: j.Name, Created: j.CreationTimestamp.Time, Hosts: hs}
		switch s.kind.kind {
		case api.KindVerify:
			v.Config, v.Status, v.Phase, v.Hosts = verifyView(j)
		case api.KindRestore:
			r := restoreOf(j)
			if t := r.Target(); t.Kind != "" {
				v.Config = t.String()
			}
			v.Status, v.Phase = r.Status, r.Phase()
			for i := range hs {
				hs[i].Message = r.Message(hs[i])
			}
		default:
			b := sessionOf(j)
			v.Config, v.Status, v.Phase = b.Config, b.Status, b.Phase()
		}
		views = append(views, v)
	}
	sort.SliceStable(views, func(a, b int) bool {
		if !views[a].Created.Equal(views[b].Created) {
			return views[a].Created.After(views[b].Created)
		}
		return views[a].Name > views[b].Name
	})
	if len(views) > o.Limit {
		views = views[:o.Limit]
	}
	return views
}

// verifyView shows a verification session as the live views show sessions: one row per
// snapshot verified (by its host), or one row while the snapshots are not known yet.
func verifyView(j *batchv1.Job) (config string, st api.SessionStatus, phase api.Phase, hosts []api.HostStatus) {
	s := verifySessionOf(j)
	phase = s.Phase()
	st = api.SessionStatus{Phase: phase, SessionDuration: s.Status.Duration, Error: s.Status.Error, StartTime: s.Status.StartTime}
	for _, c := range s.Status.Conditions {
		if c.Status == "False" && st.Error == "" {
			st.Error = c.Type + ": " + c.Message
		}
	}
	// a snapshot listed was restored and compared: it passed unless it has problems
	hostPhase := api.PhaseSucceeded
	if !phase.Final() {
		hostPhase = api.PhaseRunning
	}
	for _, sn := range s.Status.Snapshots {
		h := api.HostStatus{Hostname: sn.Host, Phase: hostPhase, Message: fmt.Sprintf("snapshot %s %s: %d files verified", sn.Snapshot, sn.Path, sn.Files)}
		if len(sn.Problems) > 0 {
			h.Phase, h.Message = api.PhaseFailed, ""
			h.Error = fmt.Sprintf("snapshot %s: %s", sn.Snapshot, strings.Join(sn.Problems, "; "))
		}
		if phase == api.PhaseSkipped {
			h.Message = fmt.Sprintf("snapshot %s %s: verified before, skipped", sn.Snapshot, sn.Path)
		}
		hosts = append(hosts, h)
	}
	if len(hosts) == 0 || !phase.Final() {
		// restoring: the progress is the session's
		hosts = append(hosts[:0], api.HostStatus{Hostname: "verify", Phase: phase, Progress: s.Status.Progress, Error: s.Status.Error})
	}
	st.TotalHosts = len(hosts)
	for _, h := range hosts {
		switch h.Phase {
		case api.PhaseSucceeded:
			st.Hosts.Succeeded++
		case api.PhaseFailed:
			st.Hosts.Failed++
		case api.PhaseRunning:
			st.Hosts.Running++
		default:
			st.Hosts.Pending++
		}
	}
	return s.Config.Name, st, phase, hosts
}

func nsName(ns string) string {
	if ns == "" {
		return "all namespaces"
	}
	return "namespace " + ns
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%s", msg)
}
