package jobs

import (
	"context"
	"fmt"
	"sort"
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
	// Config keeps the sessions of one configuration; "" keeps all.
	Config string
	// Kind keeps one kind of session; "" keeps all.
	Kind api.SessionKind
	// Limit keeps the newest sessions only (default 200): a namespace with a long history
	// stays quick to draw.
	Limit int
	// Settle is how long the feed waits after a change for more before it sends a picture
	// (default 50ms): a session that creates 100 host Jobs is one redraw, not 100, and an
	// annotation change still reaches the screen well within a second.
	Settle time.Duration
}

// WatchSessions watches session and host Jobs with an informer (one list, then a watch:
// no polling) and sends a complete picture after every change, until ctx ends; then it
// closes the channel. Slow consumers see only the latest picture.
func WatchSessions(ctx context.Context, c kubernetes.Interface, o FeedOptions) (api.SessionFeed, error) {
	if o.Limit <= 0 {
		o.Limit = 200
	}
	if o.Settle <= 0 {
		o.Settle = 50 * time.Millisecond
	}
	req, err := klabels.NewRequirement(api.LabelComponent, selection.In, []string{api.ComponentSession, api.ComponentHost})
	if err != nil {
		return nil, err
	}
	sel := klabels.NewSelector().Add(*req)
	if o.Config != "" {
		r, err := klabels.NewRequirement(api.LabelBackupConfiguration, selection.Equals, []string{o.Config})
		if err != nil {
			return nil, fmt.Errorf("configuration %q: %w", o.Config, err)
		}
		sel = sel.Add(*r)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(c, 0, informers.WithNamespace(o.Namespace),
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = sel.String() }))
	inf := factory.Batch().V1().Jobs().Informer()
	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}); err != nil {
		return nil, err
	}
	factory.Start(ctx.Done())
	synced := factory.WaitForCacheSync(ctx.Done())
	for _, ok := range synced {
		if !ok {
			return nil, fmt.Errorf("watch jobs in %s: %w", nsName(o.Namespace), errOr(ctx.Err(), "the cache did not sync"))
		}
	}
	out := make(chan []api.SessionView, 1)
	go func() {
		defer close(out)
		defer factory.Shutdown()
		send := func() {
			pic := picture(inf.GetStore().List(), o)
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
	var sessions []*batchv1.Job
	hosts := map[string][]api.HostStatus{}
	for _, obj := range objs {
		j, ok := obj.(*batchv1.Job)
		if !ok {
			continue
		}
		switch j.Labels[api.LabelComponent] {
		case api.ComponentSession:
			sessions = append(sessions, j)
		case api.ComponentHost:
			st := api.HostStatus{Hostname: j.Labels[api.LabelHost], Phase: api.PhasePending}
			if v, ok := j.Annotations[api.AnnotationHostStatus]; ok {
				_ = api.Decode(api.AnnotationHostStatus, v, &st)
			}
			key := j.Namespace + "/" + j.Labels[api.LabelBackupSession]
			hosts[key] = append(hosts[key], st)
		}
	}
	views := make([]api.SessionView, 0, len(sessions))
	for _, j := range sessions {
		if o.Kind != "" && o.Kind != api.KindBackup {
			continue // restore and verification sessions carry their own component labels
		}
		s := sessionOf(j)
		hs := hosts[j.Namespace+"/"+j.Name]
		sort.Slice(hs, func(a, b int) bool { return hostLess(hs[a].Hostname, hs[b].Hostname) })
		views = append(views, api.SessionView{Kind: api.KindBackup, Namespace: j.Namespace, Name: j.Name, Config: s.Config,
			Created: j.CreationTimestamp.Time, Status: s.Status, Phase: s.Phase(), Hosts: hs})
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
